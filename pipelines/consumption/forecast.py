"""Credit consumption forecasting: per workspace and per workspace × feature/service, coherent.

Per shard of workspaces (``shard_of``: a stable hash), on the feature store's daily credit series:
1. **Holdout evaluation** on workspace totals: an Ensemble fitted on everything but the last
   ``HOLDOUT_DAYS`` days forecasts them; every member and the ensemble are scored on days they never saw
   (MAPE, sMAPE, MASE, WAPE, 80/95% coverage). The ensemble's own rolling-origin backtest (4 origins,
   where its weights are chosen) is scored too, and labelled as such.
2. **Production forecast**: Ensembles fitted on the full history of the totals and of the
   workspace × feature series forecast ``h`` days with conformal intervals.
3. **Reconciliation** (forecast-proportional top-down): each feature's forecast is the workspace total's
   forecast times the feature's share of the feature forecasts that day, so the breakdown sums to the
   total exactly; its bounds are the feature model's bounds scaled by the same factor.
   The feature ensemble's own rolling-origin backtest (4 origins) is scored per member too.
4. **Cumulative totals** (``target_metric = 'credits_cumulative'``): the workspace's credits from the first
   forecast day to each day, with an interval calibrated for totals (``Ensemble.predict_cumulative``);
   summing daily bounds would overstate a 30-day total's uncertainty. Its holdout coverage is scored
   beside that of the summed daily bounds.
``finalize`` merges the shards, tracks one MLflow run (metrics, per-series metrics, plots, the model),
registers it and applies the promotion policy (``pipelines.registry``): a challenger whose holdout WAPE
is worse than the champion's by more than ``promotion_tolerance`` is not published, so the previous
forecasts stay served.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from pipelines.features.store import load_daily_aggregates
from pipelines.features.builders import daily_series
from core.settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)

MODEL_NAME = "pae-credit-consumption"
EXPERIMENT = "credit-consumption"
HOLDOUT_DAYS = 30
DAILY_METRIC, CUMULATIVE_METRIC = "credits", "credits_cumulative"  # predictions.target_metric
LEVELS = (80, 95)


def shard_of(workspace_id: str, n_shards: int) -> int:
    return int(hashlib.md5(workspace_id.encode()).hexdigest()[:8], 16) % n_shards


def ensemble_params(settings: Settings, level: str = "total") -> dict:
    """Ensemble arguments. Workspace totals refit members at every backtest cutoff (weights then judge
    members as they forecast in production); the ~4x more feature series keep one fit for speed."""
    return {"include_prophet": settings.forecast_include_prophet, "backtest_h": 30, "n_windows": 4,
            "refit": level == "total" and settings.forecast_refit_totals, "robust": settings.forecast_robust,
            "n_jobs": settings.threads, "seed": 0, "country": "US"}


def shard_dir(settings: Settings, as_of: date, shard: int) -> Path:
    return settings.data_dir / "forecasts" / f"as_of={as_of.isoformat()}" / f"shard={shard}"


def _with_levels(model, h: int) -> pd.DataFrame:
    """(unique_id, ds, yhat, lo-80, hi-80, lo-95, hi-95) from one fitted model."""
    out = None
    for lv in LEVELS:
        f = model.predict(h=h, level=lv).rename(columns={"yhat_lower": f"lo-{lv}", "yhat_upper": f"hi-{lv}"})
        out = f if out is None else out.merge(f.drop(columns="yhat"), on=["unique_id", "ds"])
    return out


def series_metrics(actual: pd.DataFrame, forecasts: dict[str, pd.DataFrame], history: pd.DataFrame) -> pd.DataFrame:
    """Per (series, model) holdout metrics; MASE scaled by the in-sample seasonal-naive (7) MAE."""
    from models.forecasting import mape, mase, smape, wape

    hist = history.sort_values(["unique_id", "ds"])
    scale = hist.groupby("unique_id")["y"].apply(
        lambda y: float(np.mean(np.abs(y.to_numpy()[7:] - y.to_numpy()[:-7]))) if len(y) > 7 else np.nan)
    rows = []
    for name, fc in forecasts.items():
        merged = actual.merge(fc, on=["unique_id", "ds"], how="inner")
        for uid, g in merged.groupby("unique_id", sort=True):
            y, yhat = g["y"].to_numpy(), g["yhat"].to_numpy()
            row = {"unique_id": uid, "model": name, "mape": mape(y, yhat), "smape": smape(y, yhat),
                   "mase": mase(y, yhat, scale.get(uid, np.nan)), "wape": wape(y, yhat),
                   "actual_sum": float(y.sum()), "abs_err_sum": float(np.abs(y - yhat).sum()),
                   "period_abs_err": float(abs(yhat.sum() - y.sum()))}
            for lv in LEVELS:
                if f"lo-{lv}" in g:
                    row[f"coverage_{lv}"] = float(((y >= g[f"lo-{lv}"]) & (y <= g[f"hi-{lv}"])).mean())
                    row[f"hits_{lv}"], row[f"n_{lv}"] = int(row[f"coverage_{lv}"] * len(y) + 0.5), len(y)
            rows.append(row)
    return pd.DataFrame(rows)


def summarize(per_series: pd.DataFrame) -> pd.DataFrame:
    """One row per model: median MASE, median MAPE/sMAPE, pooled WAPE, pooled error of the horizon
    totals and pooled coverage."""
    g = per_series.groupby("model")
    out = pd.DataFrame({
        "n_series": g.size(),
        "median_mase": g["mase"].median(),
        "median_mape": g["mape"].median(),
        "median_smape": g["smape"].median(),
        "median_wape": g["wape"].median(),
        "pooled_wape": g["abs_err_sum"].sum() / g["actual_sum"].sum().replace(0, np.nan),
    })
    if "period_abs_err" in per_series:  # error of each series' whole-horizon total (e.g. its 30-day credits)
        out["pooled_period_err"] = g["period_abs_err"].sum() / g["actual_sum"].sum().replace(0, np.nan)
    for lv in LEVELS:
        if f"hits_{lv}" in per_series:
            out[f"coverage_{lv}"] = g[f"hits_{lv}"].sum() / g[f"n_{lv}"].sum().replace(0, np.nan)
    return out.reset_index()


def cumulative_holdout(actual: pd.DataFrame, model, daily: pd.DataFrame) -> pd.DataFrame:
    """Per series, the holdout's credit total against two intervals for it: the last step of the
    ensemble's cumulative forecast (calibrated for totals) and the sum of the daily bounds.

    ``daily`` is the ensemble's daily holdout forecast with ``lo-<level>``/``hi-<level>`` columns.
    """
    bounds = [f"{b}-{lv}" for lv in LEVELS for b in ("lo", "hi")]
    out = actual.groupby("unique_id")["y"].sum().rename("actual_total").to_frame()
    out = out.join(daily.groupby("unique_id")[bounds].sum().add_prefix("summed_"), how="inner")
    for lv in LEVELS:
        cum = model.predict_cumulative(HOLDOUT_DAYS, lv)
        last = cum[cum["ds"] == cum.groupby("unique_id")["ds"].transform("max")].set_index("unique_id")
        out["forecast_total"] = last["yhat"]
        out[f"lo-{lv}"], out[f"hi-{lv}"] = last["yhat_lower"], last["yhat_upper"]
    return out.reset_index()


def summarize_cumulative(per_series: pd.DataFrame) -> dict[str, float]:
    """Coverage and median width (relative to the forecast total) of both intervals for the holdout total."""
    y, f = per_series["actual_total"], per_series["forecast_total"]
    out = {}
    for lv in LEVELS:
        for name, prefix in (("cumulative", ""), ("summed_daily", "summed_")):
            lo, hi = per_series[f"{prefix}lo-{lv}"], per_series[f"{prefix}hi-{lv}"]
            out[f"{name}_total_coverage_{lv}"] = float(((y >= lo) & (y <= hi)).mean())
            out[f"{name}_total_width_{lv}"] = float(((hi - lo) / f.where(f > 0)).median())
    return out


def reconcile(total: pd.DataFrame, bottom: pd.DataFrame) -> pd.DataFrame:
    """Forecast-proportional top-down: feature forecasts scaled so they sum to the workspace total.

    ``total``: (workspace_id, ds, yhat, yhat_lower, yhat_upper); ``bottom``: the same with ``feature``.
    Days where every feature forecast is 0 split the total evenly.
    """
    b = bottom.merge(total[["workspace_id", "ds", "yhat"]].rename(columns={"yhat": "total"}), on=["workspace_id", "ds"])
    denom = b.groupby(["workspace_id", "ds"])["yhat"].transform("sum")
    n = b.groupby(["workspace_id", "ds"])["yhat"].transform("size")
    share = np.where(denom > 0, b["yhat"] / denom.where(denom > 0, 1), 1.0 / n)
    factor = np.where(b["yhat"] > 0, b["total"] * share / b["yhat"].where(b["yhat"] > 0, 1), 0.0)
    out = b.assign(yhat=b["total"] * share)
    out["yhat_lower"] = np.minimum(np.where(b["yhat"] > 0, b["yhat_lower"] * factor, 0.0), out["yhat"])
    out["yhat_upper"] = np.maximum(np.where(b["yhat"] > 0, b["yhat_upper"] * factor, out["yhat"]), out["yhat"])
    return out.drop(columns="total")


def model_importance(model) -> dict:
    """What the fitted workspace-total Ensemble leans on: each member's mean weight over the series and,
    when the global GBM carries weight, its features' share of the total split gain."""
    from models.forecasting import GlobalGBM, Robust

    members = [c for c in model.weights_.columns if c not in (model.panel_.id_col, "group", "choice")]
    out = {"ensemble_member_weights": {m: float(model.weights_[m].mean()) for m in members}}
    for member in model.members_:
        inner = member.model if isinstance(member, Robust) else member
        if isinstance(inner, GlobalGBM):
            out["global_gbm_total_gain"] = inner.feature_importance()
    return out


def merge_importance(parts: list[tuple[int, dict]]) -> dict:
    """Average ``model_importance`` dicts of the shards, weighted by their series counts."""
    merged: dict = {}
    for key in sorted({k for _, imp in parts for k in imp}):
        weighted = [(n, imp[key]) for n, imp in parts if key in imp]
        total = sum(n for n, _ in weighted)
        names = sorted({name for _, d in weighted for name in d})
        merged[key] = {name: sum(n * d.get(name, 0.0) for n, d in weighted) / total for name in names}
    return merged


def forecast_shard(settings: Settings, as_of: date, shard: int, n_shards: int) -> dict:
    """Evaluate, fit and forecast one shard; writes Parquet outputs and returns a reference dict."""
    from models.forecasting import ETS, Ensemble, Robust, default_members
    from models.forecasting.evaluation import shared_backtest_windows

    t0 = time.perf_counter()
    h = settings.forecast_horizon_days
    agg = load_daily_aggregates(settings.offline_store_dir, as_of,
                                since=as_of - timedelta(days=settings.forecast_history_days - 1))
    totals = daily_series(agg, as_of)
    totals = totals[totals["unique_id"].map(lambda w: shard_of(w, n_shards) == shard)]
    bottom = daily_series(agg, as_of, by_feature=True)
    bottom = bottom[bottom["unique_id"].str.split("|", n=1).str[0].isin(set(totals["unique_id"]))]
    out = shard_dir(settings, as_of, shard)
    out.mkdir(parents=True, exist_ok=True)
    ref = {"shard": shard, "path": str(out), "n_series": 0, "n_rows": 0, "n_workspaces": 0}
    if totals.empty:
        pd.DataFrame().to_parquet(out / "forecast.parquet")
        return ref
    params = ensemble_params(settings)

    # 1. holdout: the last HOLDOUT_DAYS never seen by the ensemble or its members
    cutoff = pd.Timestamp(as_of) - pd.Timedelta(days=HOLDOUT_DAYS)
    train, actual = totals[totals["ds"] <= cutoff], totals[totals["ds"] > cutoff]
    lengths = train.groupby("unique_id").size()
    train = train[train["unique_id"].isin(lengths[lengths >= 28].index)]
    evaluated = {}
    with shared_backtest_windows():  # the production backtest reuses the holdout backtest's common windows
        if not train.empty:
            ens = Ensemble(**params).fit(train, freq="D")
            evaluated = {"Ensemble": _with_levels(ens, HOLDOUT_DAYS)}
            ens.predict(h=HOLDOUT_DAYS, level=settings.forecast_level).rename(columns={"unique_id": "workspace_id"}
                                                                            ).to_parquet(out / "holdout_total_forecast.parquet")
            # every member, including those the ensemble left out; with refit, the ensemble's own
            # members are already fitted on the whole training window
            fitted = {m.name: m for m in ens.members_} if params["refit"] else {}
            member_args = {k: params[k] for k in ("include_prophet", "country", "n_jobs", "seed", "robust")}
            for m in default_members(**member_args):
                evaluated[m.name] = _with_levels(fitted.get(m.name) or m.fit(train, freq="D"), HOLDOUT_DAYS)
            if params["robust"]:  # the strongest member without the Robust wrapper, to show what it buys
                plain = ETS(n_jobs=params["n_jobs"], alias="ETS-uncleaned")
                evaluated[plain.name] = _with_levels(plain.fit(train, freq="D"), HOLDOUT_DAYS)
            ens.backtest_.to_parquet(out / "backtest.parquet")
            train.to_parquet(out / "holdout_train.parquet")  # the backtest's history, for its MASE scale
            series_metrics(actual, evaluated, train).to_parquet(out / "holdout_metrics.parquet")
            cumulative_holdout(actual, ens, evaluated["Ensemble"]).to_parquet(out / "holdout_cumulative.parquet")

        # 2. production forecasts (totals and features), 3. reconciliation
        t_fit = time.perf_counter()
        total_model = Ensemble(**params).fit(totals, freq="D")
    total_fc = total_model.predict(h=h, level=settings.forecast_level).rename(columns={"unique_id": "workspace_id"})
    robust = next((m for m in total_model.members_ if isinstance(m, Robust)), None)
    if robust is not None:  # each workspace's inferred holiday calendar, for analysts
        robust.calendar_frame().rename(columns={"unique_id": "workspace_id"}).to_parquet(out / "holiday_calendars.parquet")
    bottom_model = Ensemble(**ensemble_params(settings, "feature")).fit(bottom, freq="D")
    if len(bottom_model.backtest_):  # rolling-origin accuracy of the feature/service series, per member
        bottom_model.backtest_.to_parquet(out / "backtest_features.parquet")
        bottom.to_parquet(out / "features_history.parquet")
    bottom_fc = bottom_model.predict(h=h, level=settings.forecast_level)
    bottom_fc[["workspace_id", "feature"]] = bottom_fc["unique_id"].str.split("|", n=1, expand=True)
    features = reconcile(total_fc, bottom_fc.drop(columns="unique_id"))
    cumulative = total_model.predict_cumulative(h, level=settings.forecast_level).rename(
        columns={"unique_id": "workspace_id"})
    frame = pd.concat([total_fc.assign(dimension="total", target_metric=DAILY_METRIC),
                       features.rename(columns={"feature": "dimension"}).assign(target_metric=DAILY_METRIC),
                       cumulative.assign(dimension="total", target_metric=CUMULATIVE_METRIC)], ignore_index=True)
    frame = frame.rename(columns={"ds": "prediction_date", "yhat": "predicted_value",
                                  "yhat_lower": "confidence_lower", "yhat_upper": "confidence_upper"})
    frame["confidence_level"] = settings.forecast_level / 100
    frame = frame.sort_values(["workspace_id", "target_metric", "dimension", "prediction_date"]).reset_index(drop=True)
    frame.to_parquet(out / "forecast.parquet")
    pd.concat([total_model.weights_.assign(level="total"), bottom_model.weights_.assign(level="feature")]
              ).to_parquet(out / "weights.parquet")
    fallbacks = [{**f.__dict__, "level": level} for level, m in (("total", total_model), ("feature", bottom_model))
                 for f in m.fallbacks]
    pd.DataFrame(fallbacks, columns=["unique_id", "model", "reason", "used", "level"]).astype(
        {"unique_id": str}).to_parquet(out / "fallbacks.parquet")
    (out / "importance.json").write_text(json.dumps(model_importance(total_model)))
    ref.update(n_series=int(totals["unique_id"].nunique() + bottom["unique_id"].nunique()), n_rows=len(frame),
               n_workspaces=int(totals["unique_id"].nunique()), n_fallbacks=len(fallbacks),
               fallbacks=fallbacks[:20], fit_seconds=round(time.perf_counter() - t_fit, 1),
               seconds=round(time.perf_counter() - t0, 1),
               history_start=str(totals["ds"].min().date()), history_end=as_of.isoformat())
    (out / "ref.json").write_text(json.dumps(ref, default=str))
    log.info("consumption shard %d: %d series in %.1fs", shard, ref["n_series"], ref["seconds"])
    return ref


def _plots(settings: Settings, as_of: date, totals_fc: pd.DataFrame, holdout_fc: pd.DataFrame | None = None,
           n: int = 4) -> list[Path]:
    """PNGs of the ``n`` largest workspaces: history, the forecast with its band and, over the last
    ``HOLDOUT_DAYS`` of history, the holdout forecast made without them, to compare with what happened."""
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


def _shard_frames(refs: list[dict], name: str) -> pd.DataFrame:
    """The shards' ``name`` Parquet files as one frame; empty when no shard wrote one."""
    frames = [pd.read_parquet(p) for p in (Path(r["path"]) / name for r in refs) if p.exists()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def finalize(settings: Settings, engine: Engine, as_of: date, refs: list[dict]) -> dict:
    """Merge shard outputs, track and register the model, decide whether to publish."""
    from pipelines.registry import fingerprint, promote, record_ml_model, register, use_experiment

    refs = [r for r in refs if r.get("n_rows")]
    if not refs:
        return {"publish": False, "reason": "no workspace had history to forecast"}
    root = settings.data_dir / "forecasts" / f"as_of={as_of.isoformat()}"
    frame = pd.concat([pd.read_parquet(Path(r["path"]) / "forecast.parquet") for r in refs], ignore_index=True)
    per_series = _shard_frames(refs, "holdout_metrics.parquet")
    summary = summarize(per_series) if len(per_series) else pd.DataFrame()
    metrics: dict = {}
    if len(summary):
        for row in summary.itertuples():
            for col in ("median_mase", "median_mape", "median_smape", "pooled_wape", "pooled_period_err",
                        "coverage_80", "coverage_95"):
                if hasattr(row, col):
                    metrics[f"holdout_{row.model}_{col}"] = float(getattr(row, col))
    cumulative = _shard_frames(refs, "holdout_cumulative.parquet")
    if len(cumulative):
        metrics.update({f"holdout_Ensemble_{k}": v for k, v in summarize_cumulative(cumulative).items()})
    ens = summary[summary["model"] == "Ensemble"].iloc[0] if len(summary) else None
    value = float(ens["pooled_wape"]) if ens is not None else float("nan")

    importance = merge_importance([(r["n_workspaces"], json.loads((Path(r["path"]) / "importance.json").read_text()))
                                   for r in refs if (Path(r["path"]) / "importance.json").exists()])

    use_experiment(settings, EXPERIMENT)
    import mlflow

    frame_path = root / "forecast.parquet"
    params = {"as_of": as_of.isoformat(), "horizon_days": settings.forecast_horizon_days,
              "level": settings.forecast_level, "holdout_days": HOLDOUT_DAYS, "shards": len(refs),
              "history_days": settings.forecast_history_days, **{f"ensemble_{k}": v for k, v in ensemble_params(settings).items()}}
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
        fallbacks = _shard_frames(refs, "fallbacks.parquet")
        if len(fallbacks):  # every series a member did not forecast with its own method, and why
            fallbacks.to_csv(root / "fallbacks.csv", index=False)
            mlflow.log_artifact(str(root / "fallbacks.csv"), "metrics")
            for (level, model), n in fallbacks.groupby(["level", "model"]).size().items():
                mlflow.log_metric(f"n_fallbacks_{level}_{model}", int(n))
        cal = _shard_frames(refs, "holiday_calendars.parquet")
        if len(cal):
            cal.to_csv(root / "holiday_calendars.csv", index=False)
            mlflow.log_artifact(str(root / "holiday_calendars.csv"), "metrics")
            mlflow.log_metric("workspaces_with_holiday_calendar", int(cal["holiday_country"].notna().sum()))
        mlflow.log_dict(importance, "feature_importance.json")
        holdout_fc = _shard_frames(refs, "holdout_total_forecast.parquet")
        daily_totals = frame[(frame["dimension"] == "total") & (frame["target_metric"] == DAILY_METRIC)]
        for p in _plots(settings, as_of, daily_totals, holdout_fc):
            mlflow.log_artifact(str(p), "plots")
        config = root / "config.json"
        config.write_text(json.dumps({"ensemble": ensemble_params(settings),
                                      "ensemble_features": ensemble_params(settings, "feature")}))
        info = mlflow.pyfunc.log_model(name="model", python_model=str(Path(__file__).with_name("pyfunc.py")),
                                       artifacts={"config": str(config)}, code_paths=[str(REPO_ROOT / "models")])
        run_id, artifact_uri = run.info.run_id, run.info.artifact_uri
    print_hash = fingerprint(as_of, params, frame)
    model_version = register(info.model_uri, MODEL_NAME, "holdout_wape", value, settings, fingerprint=print_hash)
    decision = promote(MODEL_NAME, model_version, "holdout_wape", value, settings, lower_is_better=True,
                       tolerance=settings.promotion_tolerance)
    frame["model_version"] = model_version
    frame.to_parquet(frame_path)
    with engine.begin() as conn:
        record_ml_model(conn, model_name=MODEL_NAME, model_type="ensemble_forecaster", version=model_version,
                        target_metric=DAILY_METRIC, training_params=params,
                        performance_metrics={**metrics, "promotion": decision.as_dict()}, feature_importance=importance or None,
                        artifacts_path=f"{artifact_uri}/model",
                        training_data_start=min(date.fromisoformat(r["history_start"]) for r in refs),
                        training_data_end=as_of, is_active=decision.promoted)
    return {"publish": decision.promoted, "reason": decision.reason, "forecast_path": str(frame_path),
            "model_version": model_version, "mlflow_run_id": run_id, "holdout_wape": value,
            "rows": len(frame), "summary": summary.to_dict("records") if len(summary) else []}
