"""MLflow pyfunc for the growth projection (models from code; no pickled objects).

The registered model is the configured ensemble plus the run's error paths: artifact ``config`` holds the
ensemble's arguments and member names, ``error_bank`` the backtest's log-error units the scenarios are drawn
from. ``predict`` fits the ensemble to the history it is given, as the nightly run does, and returns the
scenario quantiles of each workspace. Input: ``(workspace_id, day, dau, wau, mau)``, one row per workspace and
day; params ``h`` (default 90) and ``paths`` (default from the config).
"""
from __future__ import annotations

import json

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import set_model

try:  # in the repo
    from pipelines.growth import sample_paths as sp
except ImportError:  # loaded from the MLflow artifact, where the module is shipped as code
    import sample_paths as sp  # type: ignore[no-redef]


class GrowthPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        with open(context.artifacts["config"]) as f:
            self.config = json.load(f)
        bank = np.load(context.artifacts["error_bank"], allow_pickle=False)
        self.bank = sp.ErrorBank(errors=bank["errors"], group=bank["group"].astype(object))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from models.forecasting import Ensemble

        params = params or {}
        h = int(params.get("h", 90))
        n_paths = int(params.get("paths", self.config["paths"]))
        long = model_input.melt(id_vars=["workspace_id", "day"], value_vars=list(sp.METRICS), var_name="metric",
                                value_name="y")
        long["unique_id"] = long["workspace_id"].astype(str) + "|" + long["metric"]
        members = sp.build_members(self.config["members"], self.config.get("country"), 1)
        model = Ensemble(members=members, **self.config["ensemble"]).fit(
            long.rename(columns={"day": "ds"})[["unique_id", "ds", "y"]], freq="D")
        mean, _ = model.predict_arrays(h, [])
        order = {uid: i for i, uid in enumerate(model.panel_.ids)}
        rows = []
        for ws in sorted(model_input["workspace_id"].astype(str).unique()):
            yhat = mean[[order[f"{ws}|{m}"] for m in sp.METRICS]]
            q = sp.scenario_quantiles(sp.simulate(yhat, self.bank, "all", n_paths, sp.stable_seed("growth", ws)))
            for j, metric in enumerate(sp.METRICS):
                for k in range(h):
                    rows.append({"workspace_id": ws, "target_metric": metric, "step": k + 1,
                                 **{f"q{int(p * 1000):03d}": float(q[i, j, k]) for i, p in enumerate(sp.QUANTILES)}})
        return pd.DataFrame(rows)


set_model(GrowthPyfunc())
