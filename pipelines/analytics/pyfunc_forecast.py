"""MLflow pyfunc of a forecaster trained by ``train_model`` (models from code; no pickled objects).

Artifact ``config``: the model type, its hyperparameters, frequency and horizon. ``predict`` fits the configured
forecaster to the history it is given, as the nightly consumption model does. Input: a long frame
``(unique_id, ds, y)``; params ``h`` (default: the trained horizon) and ``level`` (default 95). Output:
``(unique_id, ds, yhat, yhat_lower, yhat_upper)``.
"""
from __future__ import annotations

import json

import mlflow.pyfunc
import pandas as pd
from mlflow.models import set_model


def _build(model_type: str, hyperparameters: dict):
    """The configured forecaster (as ``pipelines.analytics.training.build_model``, with ``models`` only)."""
    from models.forecasting import MODELS
    from models.peaks import PeakForecaster

    kw = dict(hyperparameters)
    if model_type == "peak_usage":
        if "members" in kw:
            kw["members"] = tuple(kw["members"])
        return PeakForecaster(**kw)
    if model_type == "ensemble" and kw.get("members") is not None:
        kw["members"] = [MODELS[m]() for m in kw["members"]]
    return MODELS[model_type](**kw)


class ForecastPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        with open(context.artifacts["config"]) as f:
            self.config = json.load(f)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        params = params or {}
        model = _build(self.config["model_type"], self.config["hyperparameters"])
        model.fit(model_input, freq=self.config["freq"])
        return model.predict(h=int(params.get("h", self.config["h"])), level=int(params.get("level", 95)))


set_model(ForecastPyfunc())
