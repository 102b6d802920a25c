"""MLflow pyfunc wrappers (models from code: MLflow loads this file, no pickled Python objects).

The registered model's artifact ``bundle`` is a directory written by the model's own ``save``; these
wrappers only load it and delegate ``predict``; the churn wrapper then puts the model's drivers in
words (``pipelines.churn.wording``), so the served frame is the published scores frame.
"""
from __future__ import annotations

import mlflow.pyfunc
import pandas as pd
from mlflow.models import set_model


class ChurnPyfunc(mlflow.pyfunc.PythonModel):
    """Input: a frame with the ``user_behaviour`` feature columns; output: the scores frame.

    Columns: ``churn_probability``, ``risk_score``, ``risk_factors``, ``recommended_actions``,
    ``days_until_churn``, ``state`` (see :func:`pipelines.churn.wording.with_words`).
    """

    def load_context(self, context) -> None:
        from models.churn import ChurnModel

        self.model = ChurnModel.load(context.artifacts["bundle"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from pipelines.churn.wording import with_words

        scored = self.model.predict(model_input)
        return with_words(scored, model_input[self.model.feature_columns])


set_model(ChurnPyfunc())
