"""MLflow pyfunc for the peak-usage forecaster (models from code; no pickled objects).

The registered model is the configured estimator: its artifact ``config`` holds the PeakForecaster parameters,
and ``predict`` fits them to the hourly history it is given (a long frame ``(unique_id, ds, y)`` on the series'
own clock) and returns one row per series and day with the peak hour, the peak value, its interval and the
capacity (``pae peaks``' columns). Params ``horizon_days`` (default 7) and ``level`` (default 95).
"""
from __future__ import annotations

import json

import mlflow.pyfunc
import pandas as pd
from mlflow.models import set_model


class PeakUsagePyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        with open(context.artifacts["config"]) as f:
            self.config = json.load(f)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from models.peaks import peak_table

        params = params or {}
        return peak_table(model_input, int(params.get("horizon_days", 7)), int(params.get("level", 95)),
                          **self.config["forecaster"])


set_model(PeakUsagePyfunc())
