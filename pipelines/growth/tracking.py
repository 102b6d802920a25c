"""MLflow tracking of a growth run: parameters, holdout and backtest tables (every member beside the
ensemble), coverage, milestone calibration, statuses, plots of history and scenarios, the scoring artifact
folder nightly scoring reads (``pipelines.growth.artifact``) and the model."""
from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from core.settings import REPO_ROOT, Settings
from pipelines.growth.project import ensemble_params, growth_members
from pipelines.registry import use_experiment

EXPERIMENT = "growth"



def backtest_summary(refs: list[dict]) -> pd.DataFrame:
    """Rolling-origin backtest of every member and the ensemble (in-sample weights), over the shards."""
    from models.forecasting import evaluate

    paths = [Path(r["path"]) for r in refs if (Path(r["path"]) / "backtest.parquet").exists()]
    if not paths:
        return pd.DataFrame()
    bt = pd.concat([pd.read_parquet(p / "backtest.parquet") for p in paths], ignore_index=True)
    history = pd.concat([pd.read_parquet(p / "history.parquet") for p in paths], ignore_index=True)
    return evaluate(bt, history).summary


def _plots(settings: Settings, as_of: date, projection: pd.DataFrame, growth: pd.DataFrame, n: int = 4) -> list[Path]:
    """PNGs of the ``n`` largest projected workspaces: 180 days of DAU/WAU/MAU and the three scenarios with the
    95% band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    likely = projection[projection["scenario"] == "likely"]
    top = likely[likely["target_metric"] == "mau"].groupby("workspace_id")["predicted_value"].first().nlargest(n).index
    out = []
    colors = {"dau": "tab:green", "wau": "tab:orange", "mau": "tab:blue"}
    for ws in top:
        fig, ax = plt.subplots(figsize=(9, 4))
        h = growth[(growth["workspace_id"] == ws) & (growth["day"] > pd.Timestamp(as_of - timedelta(days=180)))]
        for metric, color in colors.items():
            ax.plot(h["day"], h[metric], color=color, lw=1, label=metric.upper())
            p = projection[(projection["workspace_id"] == ws) & (projection["target_metric"] == metric)]
            s = {k: g.sort_values("prediction_date") for k, g in p.groupby("scenario")}
            ax.plot(s["likely"]["prediction_date"], s["likely"]["predicted_value"], color=color, lw=1.5)
            for name in ("worst", "best"):
                ax.plot(s[name]["prediction_date"], s[name]["predicted_value"], color=color, lw=0.8, ls="--")
            ax.fill_between(s["likely"]["prediction_date"], s["likely"]["confidence_lower"],
                            s["likely"]["confidence_upper"], color=color, alpha=0.12)
        ax.set_title(f"{ws}: active users and projections as of {as_of} (dashed: worst/best, band: 95%)")
        ax.legend(loc="upper left", fontsize="small")
        fig.tight_layout()
        path = settings.data_dir / "growth" / f"as_of={as_of.isoformat()}" / f"plot_{ws}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        out.append(path)
    return out


def log_run(settings: Settings, as_of: date, refs: list[dict], params: dict, metrics: dict,
            tables: dict[str, pd.DataFrame], projection: pd.DataFrame, growth: pd.DataFrame,
            importance: dict, scoring: Path | None = None) -> tuple[str, str, str]:
    """One MLflow run for the merged shards, with the scoring artifact folder (``scoring/``, what nightly scoring
    loads: ``pipelines.growth.artifact``) when given; returns (run id, model URI, artifact URI)."""
    use_experiment(settings, EXPERIMENT)
    import mlflow

    root = settings.data_dir / "growth" / f"as_of={as_of.isoformat()}"
    root.mkdir(parents=True, exist_ok=True)
    with mlflow.start_run(run_name=f"growth {as_of}") as run:
        mlflow.set_tags({"pae.run_date": as_of.isoformat()})
        mlflow.log_params(params)
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)})
        for name, table in tables.items():
            if len(table):
                table.to_csv(root / f"{name}.csv", index=False)
                mlflow.log_artifact(str(root / f"{name}.csv"), "metrics")
        mlflow.log_dict(importance, "feature_importance.json")
        if scoring is not None:
            mlflow.log_artifacts(str(scoring), scoring.name)
        if len(projection):
            for p in _plots(settings, as_of, projection, growth):
                mlflow.log_artifact(str(p), "plots")
        config = root / "config.json"
        config.write_text(json.dumps({"ensemble": ensemble_params(settings), "paths": settings.growth_paths,
                                      "members": [m.name for m in growth_members(settings)],
                                      "country": settings.holiday_country,
                                      "mau_window_days": settings.growth_mau_window_days}))
        bank = root / "error_bank.npz"
        errors = [np.load(Path(r["path"]) / "error_bank.npz") for r in refs if (Path(r["path"]) / "error_bank.npz").exists()]
        if errors:
            np.savez_compressed(bank, errors=np.concatenate([e["errors"] for e in errors]),
                                group=np.concatenate([e["group"] for e in errors]))
        artifacts = {"config": str(config), **({"error_bank": str(bank)} if errors else {})}
        from mlflow.models import ModelSignature
        from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

        signature = ModelSignature(
            inputs=Schema([ColSpec("string", "workspace_id"), ColSpec("datetime", "day"),
                           *[ColSpec("long", m) for m in ("dau", "wau", "mau")]]),
            params=ParamSchema([ParamSpec("h", "long", settings.growth_horizon_days),
                                ParamSpec("paths", "long", settings.growth_paths)]))
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(Path(__file__).with_name("pyfunc.py")), artifacts=artifacts,
            signature=signature,
            code_paths=[str(REPO_ROOT / "models"), str(Path(__file__).with_name("sample_paths.py"))])
        run_id, artifact_uri = run.info.run_id, run.info.artifact_uri
    return run_id, info.model_uri, artifact_uri
