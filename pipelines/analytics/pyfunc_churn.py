"""MLflow pyfunc of a churn classifier trained by ``train_model`` (models from code; no pickled objects).

Artifact ``bundle``: ``manifest.json`` and the classifier saved by ``ChurnClassifier.save`` (XGBoost JSON or a
skops file). Input: a frame with the training feature columns; output: ``churn_probability`` (the classifier's,
uncalibrated: the nightly churn kind calibrates its champion on a later slice).
"""
from __future__ import annotations

import json
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
from mlflow.models import set_model


class ChurnClassifierPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        from models.churn import ChurnClassifier

        bundle = Path(context.artifacts["bundle"])
        self.manifest = json.loads((bundle / "manifest.json").read_text())
        self.model = ChurnClassifier.load(self.manifest["classifier"], bundle)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        columns = self.manifest["feature_columns"]
        missing = [c for c in columns if c not in model_input.columns]
        if missing:
            raise ValueError(f"input lacks feature columns {missing}")
        p = self.model.predict_proba(model_input[columns])[:, 1]
        return pd.DataFrame({"churn_probability": p}, index=model_input.index)


set_model(ChurnClassifierPyfunc())
