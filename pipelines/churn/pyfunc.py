"""MLflow pyfunc wrappers (models from code: MLflow loads this file, no pickled Python objects).

The registered model's artifact ``bundle`` is a directory written by the model's own ``save``; these
wrappers only load it and delegate ``predict``.
"""
from __future__ import annotations

import mlflow.pyfunc
import pandas as pd
from mlflow.models import set_model


class ChurnPyfunc(mlflow.pyfunc.PythonModel):
    """Input: a frame with the ``user_behaviour`` feature columns; output: the scored frame."""

    def load_context(self, context) -> None:
        from models.churn import ChurnModel

        self.model = ChurnModel.load(context.artifacts["bundle"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.model.predict(model_input)


set_model(ChurnPyfunc())
