"""MLflow tracking of a consumption run: metrics, per-series and backtest tables, fallbacks, holiday
calendars, feature importance, forecast plots and the model (a pyfunc from code)."""
from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from core.contracts import TOTAL
from core.settings import REPO_ROOT, Settings
from pipelines.consumption.forecast import DAILY_METRIC, ensemble_params
from pipelines.features.builders import daily_series
from pipelines.features.store import load_daily_aggregates
from pipelines.registry import use_experiment
from pipelines.results import shard_frames

EXPERIMENT = "credit-consumption"


def _plots(settings: Settings, as_of: date, totals_fc: pd.DataFrame, holdout_fc: pd.DataFrame | None = None,
           n: int = 4) -> list[Path]:
    """PNGs of the ``n`` largest workspaces: history, the forecast with its band and, over the last
    ``forecast_holdout_days`` of history, the holdout forecast made without them, to compare with what happened."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = load_daily_aggregates(settings.offline_store_dir, as_of, since=as_of - timedelta(days=120))
    hist = daily_series(agg, as_of)
    top = hist.groupby("unique_id")["y"].sum().nlargest(n).index
    paths = []
    for ws in top:
        h, f = hist[hist["unique_id"] == ws], totals_fc[totals_fc["workspace_id"] == ws]
        fig, ax = plt.subplots(figsize=(9, 4))
        ax.plot(h["ds"], h["y"], color="black", lw=1, label="credits")
        ax.plot(f["prediction_date"], f["predicted_value"], color="tab:blue", lw=1.5, label="forecast")
        ax.fill_between(f["prediction_date"], f["confidence_lower"], f["confidence_upper"], alpha=0.25,
                        color="tab:blue", label=f"{int(settings.forecast_level)}% interval")
        if holdout_fc is not None and len(holdout_fc) and (ws == holdout_fc["workspace_id"]).any():
            ho = holdout_fc[holdout_fc["workspace_id"] == ws]
            ax.plot(ho["ds"], ho["yhat"], color="tab:orange", lw=1.5, label="holdout forecast (days unseen)")
            ax.fill_between(ho["ds"], ho["yhat_lower"], ho["yhat_upper"], alpha=0.2, color="tab:orange")
        ax.set_title(f"{ws}: daily credits, as of {as_of}")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), fontsize="small", ncol=4, frameon=False)
        fig.tight_layout()
        path = settings.data_dir / "forecasts" / f"as_of={as_of.isoformat()}" / f"plot_{ws}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths





def log_run(settings: Settings, as_of: date, refs: list[dict], frame: pd.DataFrame, params: dict, metrics: dict,
            per_series: pd.DataFrame, summary: pd.DataFrame, cumulative: pd.DataFrame,
            importance: dict, scoring: Path | None = None) -> tuple[str, str, str]:
    """One MLflow run for the merged shards, with the scoring artifact folder (``scoring/``) when given;
    returns (run id, model URI, artifact URI)."""
    use_experiment(settings, EXPERIMENT)
    import mlflow

    root = settings.data_dir / "forecasts" / f"as_of={as_of.isoformat()}"
    with mlflow.start_run(run_name=f"consumption {as_of}") as run:
        mlflow.set_tags({"pae.run_date": as_of.isoformat()})
        mlflow.log_params(params)
        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
        mlflow.log_metrics({"n_series": sum(r["n_series"] for r in refs), "n_fallbacks": sum(r.get("n_fallbacks", 0) for r in refs),
                            "fit_seconds_total": sum(r.get("fit_seconds", 0) for r in refs)})
        root.mkdir(parents=True, exist_ok=True)
        if len(cumulative):
            cumulative.to_csv(root / "holdout_cumulative_per_series.csv", index=False)
            mlflow.log_artifact(str(root / "holdout_cumulative_per_series.csv"), "metrics")
        if len(per_series):
            per_series.to_csv(root / "holdout_per_series.csv", index=False)
            summary.to_csv(root / "holdout_summary.csv", index=False)
            mlflow.log_artifact(str(root / "holdout_per_series.csv"), "metrics")
            mlflow.log_artifact(str(root / "holdout_summary.csv"), "metrics")
        for label, bt_file, history_file, csv_name in (
                ("totals", "backtest.parquet", "holdout_train.parquet", "backtest_summary.csv"),
                ("features", "backtest_features.parquet", "features_history.parquet", "backtest_summary_features.csv")):
            shard_paths = [Path(r["path"]) for r in refs if (Path(r["path"]) / bt_file).exists()]
            if not shard_paths:
                continue
            from models.forecasting import evaluate

            bt = evaluate(pd.concat([pd.read_parquet(p / bt_file) for p in shard_paths], ignore_index=True),
                          pd.concat([pd.read_parquet(p / history_file) for p in shard_paths], ignore_index=True)).summary
            bt.to_csv(root / csv_name, index=False)
            mlflow.log_artifact(str(root / csv_name), "metrics")
            for row in bt.itertuples():
                for col in ("mase_median", "wape", "coverage_80", "coverage_95"):
                    metric = float(getattr(row, col, float("nan")))
                    if np.isfinite(metric):
                        mlflow.log_metric(f"backtest_{label}_{row.model}_{col}", metric)
        fallbacks = shard_frames(refs, "fallbacks.parquet")
        if len(fallbacks):  # every series a member did not forecast with its own method, and why
            fallbacks.to_csv(root / "fallbacks.csv", index=False)
            mlflow.log_artifact(str(root / "fallbacks.csv"), "metrics")
            for (level, model), n in fallbacks.groupby(["level", "model"]).size().items():
                mlflow.log_metric(f"n_fallbacks_{level}_{model}", int(n))
        cal = shard_frames(refs, "holiday_calendars.parquet")
        if len(cal):
            cal.to_csv(root / "holiday_calendars.csv", index=False)
            mlflow.log_artifact(str(root / "holiday_calendars.csv"), "metrics")
            mlflow.log_metric("workspaces_with_holiday_calendar", int(cal["holiday_country"].notna().sum()))
        mlflow.log_dict(importance, "feature_importance.json")
        if scoring is not None:  # what nightly scoring loads (pipelines.consumption.artifact)
            mlflow.log_artifacts(str(scoring), scoring.name)
        holdout_fc = shard_frames(refs, "holdout_total_forecast.parquet")
        daily_totals = frame[(frame["dimension"] == TOTAL) & (frame["target_metric"] == DAILY_METRIC)]
        for p in _plots(settings, as_of, daily_totals, holdout_fc):
            mlflow.log_artifact(str(p), "plots")
        config = root / "config.json"
        config.write_text(json.dumps({"ensemble": ensemble_params(settings),
                                      "ensemble_features": ensemble_params(settings, "feature")}))
        info = mlflow.pyfunc.log_model(name="model", python_model=str(Path(__file__).with_name("pyfunc.py")),
                                       artifacts={"config": str(config)}, code_paths=[str(REPO_ROOT / "models")])
        run_id, artifact_uri = run.info.run_id, run.info.artifact_uri
    return run_id, info.model_uri, artifact_uri
