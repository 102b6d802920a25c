"""MLflow pyfunc for the agent error-rate model (models from code; the bundle is JSON, no pickled objects).

Input: a frame of escalation features (``models.error_rates.MODEL_FEATURES``, as the kind computes them) with an
optional ``shard`` column (default 0); output: ``p_breach`` (probability that a breach is confirmed within the
horizon) and ``expected_days`` (days until it, if it comes). Forecast paths and alerts need the agents' daily
history as well and are made by the nightly run (``pipelines/agent_errors``).
"""
from __future__ import annotations

import json

import mlflow.pyfunc
import pandas as pd
from mlflow.models import set_model


class AgentErrorRatePyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        from models.error_rates import EscalationModel

        with open(context.artifacts["bundle"]) as f:
            bundle = json.load(f)
        self.models = {int(k): EscalationModel.from_json(v["escalation"]) for k, v in bundle["shards"].items()}

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        shards = model_input["shard"] if "shard" in model_input else pd.Series(0, index=model_input.index)
        out = pd.DataFrame(index=model_input.index, columns=["p_breach", "expected_days"], dtype=float)
        for k, rows in model_input.groupby(shards):
            model = self.models[int(k)]
            out.loc[rows.index, "p_breach"] = model.predict(rows)
            out.loc[rows.index, "expected_days"] = model.expected_days(rows)
        return out


set_model(AgentErrorRatePyfunc())
