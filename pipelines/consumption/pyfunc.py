"""MLflow pyfunc for the consumption forecaster (models from code; no pickled objects).

The registered model is the configured estimator: its artifact ``config`` holds the Ensemble parameters,
and ``predict`` fits them to the history it is given, as the nightly pipeline does. Input: a long frame
``(unique_id, ds, y)``; params ``h`` (default 30) and ``level`` (default 95).
"""
from __future__ import annotations

import json

import mlflow.pyfunc
import pandas as pd
from mlflow.models import set_model


class ConsumptionPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        with open(context.artifacts["config"]) as f:
            self.config = json.load(f)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from models.forecasting import Ensemble

        params = params or {}
        model = Ensemble(**self.config["ensemble"]).fit(model_input, freq="D")
        return model.predict(h=int(params.get("h", 30)), level=int(params.get("level", 95)))


set_model(ConsumptionPyfunc())
