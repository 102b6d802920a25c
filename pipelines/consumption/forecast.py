"""Credit consumption forecasts for one shard of workspaces: per workspace and per workspace × feature.

Per shard (``shard_of``: a stable hash of the workspace id), on the feature store's daily credit series:
1. **Holdout evaluation** on workspace totals: an Ensemble fitted on everything but the last
   ``forecast_holdout_days`` forecasts them; every member and the ensemble are scored on days they never
   saw (``pipelines.consumption.evaluation``). The ensemble's own rolling-origin backtest (where its
   weights are chosen) is kept too, and labelled as such.
2. **Production forecast**: Ensembles fitted on the full history of the totals and of the
   workspace × feature series forecast ``h`` days with conformal intervals.
3. **Reconciliation** (forecast-proportional top-down): each feature's forecast is the workspace total's
   forecast times the feature's share of the feature forecasts that day, so the breakdown sums to the
   total exactly; its bounds are the feature model's bounds scaled by the same factor.
4. **Cumulative totals** (``target_metric = 'credits_cumulative'``): the workspace's credits from the first
   forecast day to each day, with an interval calibrated for totals (``Ensemble.predict_cumulative``);
   summing daily bounds would overstate a 30-day total's uncertainty.
Outputs are Parquet files in the shard's folder; ``pipelines.consumption.kind`` merges the shards.
"""
from __future__ import annotations

import json
import logging
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from core.contracts import CREDITS, CREDITS_CUMULATIVE, TOTAL
from core.settings import Settings
from pipelines.consumption.artifact import save_shard_state
from pipelines.consumption.evaluation import LEVELS, cumulative_holdout, series_metrics
from pipelines.features.builders import daily_series
from pipelines.features.store import load_daily_aggregates

log = logging.getLogger(__name__)

DAILY_METRIC, CUMULATIVE_METRIC = CREDITS, CREDITS_CUMULATIVE  # predictions.target_metric




def ensemble_params(settings: Settings, level: str = TOTAL) -> dict:
    """Ensemble arguments. Workspace totals refit members at every backtest cutoff (weights then judge
    members as they forecast in production); the ~4x more feature series keep one fit for speed."""
    return {"include_prophet": settings.forecast_include_prophet, "backtest_h": settings.forecast_backtest_horizon_days,
            "n_windows": settings.forecast_backtest_windows,
            "refit": level == TOTAL and settings.forecast_refit_totals, "robust": settings.forecast_robust,
            "n_jobs": settings.threads, "seed": 0, "country": settings.holiday_country,
            "include_lstm": settings.forecast_include_lstm, "lstm_params": lstm_params(settings)}


def lstm_params(settings: Settings) -> dict:
    """GlobalLSTM arguments (used when ``forecast_include_lstm``): direct horizon and the training caps."""
    return {"horizon": settings.forecast_backtest_horizon_days, "max_windows": settings.forecast_lstm_max_windows,
            "max_epochs": settings.forecast_lstm_max_epochs}


def shard_dir(settings: Settings, as_of: date, shard: int) -> Path:
    return settings.data_dir / "forecasts" / f"as_of={as_of.isoformat()}" / f"shard={shard}"


def _with_levels(model, h: int) -> pd.DataFrame:
    """(unique_id, ds, yhat, lo-80, hi-80, lo-95, hi-95) from one fitted model."""
    out = None
    for lv in LEVELS:
        f = model.predict(h=h, level=lv).rename(columns={"yhat_lower": f"lo-{lv}", "yhat_upper": f"hi-{lv}"})
        out = f if out is None else out.merge(f.drop(columns="yhat"), on=["unique_id", "ds"])
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


def load_shard_series(settings: Settings, as_of: date, shard: int, n_shards: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The shard's daily credit series: workspace totals and workspace × feature (``workspace|feature`` ids)."""
    # only the shard's workspaces and the two tables the series need are read (file by file), so a shard's
    # memory and read time follow its own workspaces, not the platform's
    agg = load_daily_aggregates(settings.offline_store_dir, as_of,
                                since=as_of - timedelta(days=settings.forecast_history_days - 1),
                                only=("workspace_total", "workspace_feature"), shard=(shard, n_shards))
    totals = daily_series(agg, as_of)
    bottom = daily_series(agg, as_of, by_feature=True)
    bottom = bottom[bottom["unique_id"].str.split("|", n=1).str[0].isin(set(totals["unique_id"]))]
    return totals, bottom


def forecast_frame(settings: Settings, total_model, bottom_model) -> pd.DataFrame:
    """The published frame from fitted total and feature models (an Ensemble or a StoredEnsemble; no feature model:
    no feature rows): daily totals, reconciled features and cumulative totals, sorted by key."""
    h = settings.forecast_horizon_days
    total_fc = total_model.predict(h=h, level=settings.forecast_level).rename(columns={"unique_id": "workspace_id"})
    parts = [total_fc.assign(dimension=TOTAL, target_metric=DAILY_METRIC)]
    if bottom_model is not None:
        bottom_fc = bottom_model.predict(h=h, level=settings.forecast_level)
        bottom_fc[["workspace_id", "feature"]] = bottom_fc["unique_id"].str.split("|", n=1, expand=True)
        features = reconcile(total_fc, bottom_fc.drop(columns="unique_id"))
        parts.append(features.rename(columns={"feature": "dimension"}).assign(target_metric=DAILY_METRIC))
    cumulative = total_model.predict_cumulative(h, level=settings.forecast_level).rename(
        columns={"unique_id": "workspace_id"})
    parts.append(cumulative.assign(dimension=TOTAL, target_metric=CUMULATIVE_METRIC))
    frame = pd.concat(parts, ignore_index=True)
    frame = frame.rename(columns={"ds": "prediction_date", "yhat": "predicted_value",
                                  "yhat_lower": "confidence_lower", "yhat_upper": "confidence_upper"})
    frame["confidence_level"] = settings.forecast_level / 100
    return frame.sort_values(["workspace_id", "target_metric", "dimension", "prediction_date"]).reset_index(drop=True)


def forecast_shard(settings: Settings, as_of: date, shard: int, n_shards: int) -> dict:
    """The nightly consumption step for one shard: score with the champion's stored model (and the challenger's
    for its A/B arm) when there is one, else train inline as a retrain does (``train_shard``), saying why."""
    from pipelines.consumption.scoring import score_shard, scoring_versions

    versions, why = scoring_versions(settings, as_of)
    if versions:
        return score_shard(settings, as_of, shard, n_shards, versions)
    ref = train_shard(settings, as_of, shard, n_shards)
    ref.update(mode="trained", train_reason=why)
    return ref


def _champion_windows(settings: Settings, as_of: date, total_model, totals: pd.DataFrame, out: Path) -> dict:
    """The champion's stored weights and the new ensemble on this shard's production backtest windows
    (``pipelines.consumption.windows``), for the promotion decision; nothing when there is no champion trained
    on data before ``as_of`` (a re-run of the champion's own date is not compared with itself)."""
    from pipelines.consumption.artifact import load_artifact
    from pipelines.consumption.scoring import MODEL_NAME
    from pipelines.consumption.windows import window_errors
    from pipelines.registry import champion_version

    champ = champion_version(MODEL_NAME, settings)
    if champ is None or not len(total_model.backtest_):
        return {}
    try:
        art = load_artifact(settings, MODEL_NAME, str(champ.version))
    except Exception as exc:  # noqa: BLE001 - no comparison on windows; the registry's fallback rule decides
        return {"champion_windows": f"champion v{champ.version} artifact unreadable: {exc}"}
    state = art.combined_state("total")
    if art.trained_through >= as_of or state is None:
        return {}
    errors = window_errors(total_model.backtest_, totals, state)
    if errors.empty:
        return {"champion_windows": f"champion v{champ.version} uses members this backtest lacks"}
    errors.to_parquet(out / "promotion_windows.parquet")
    return {"champion_windows": "compared", "champion_version": str(champ.version)}


def train_shard(settings: Settings, as_of: date, shard: int, n_shards: int) -> dict:
    """Evaluate, fit and forecast one shard; writes Parquet outputs and returns a reference dict."""
    from models.forecasting import ETS, Ensemble, Robust, default_members
    from models.forecasting.evaluation import shared_backtest_windows

    t0 = time.perf_counter()
    totals, bottom = load_shard_series(settings, as_of, shard, n_shards)
    out = shard_dir(settings, as_of, shard)
    out.mkdir(parents=True, exist_ok=True)
    ref = {"shard": shard, "path": str(out), "n_series": 0, "n_rows": 0, "n_workspaces": 0, "mode": "trained"}
    if totals.empty:
        pd.DataFrame().to_parquet(out / "forecast.parquet")
        return ref
    params = ensemble_params(settings)

    # 1. holdout: the last holdout days never seen by the ensemble or its members
    holdout_days = settings.forecast_holdout_days
    cutoff = pd.Timestamp(as_of) - pd.Timedelta(days=holdout_days)
    train, actual = totals[totals["ds"] <= cutoff], totals[totals["ds"] > cutoff]
    lengths = train.groupby("unique_id").size()
    train = train[train["unique_id"].isin(lengths[lengths >= settings.forecast_min_history_days].index)]
    evaluated = {}
    with shared_backtest_windows():  # the production backtest reuses the holdout backtest's common windows
        if not train.empty:
            ens = Ensemble(**params).fit(train, freq="D")
            evaluated = {"Ensemble": _with_levels(ens, holdout_days)}
            ens.predict(h=holdout_days, level=settings.forecast_level).rename(columns={"unique_id": "workspace_id"}
                                                                            ).to_parquet(out / "holdout_total_forecast.parquet")
            # every member, including those the ensemble left out; with refit, the ensemble's own
            # members are already fitted on the whole training window
            fitted = {m.name: m for m in ens.members_} if params["refit"] else {}
            member_args = {k: params[k] for k in ("include_prophet", "country", "n_jobs", "seed", "robust",
                                                  "include_lstm", "lstm_params")}
            for m in default_members(**member_args):
                evaluated[m.name] = _with_levels(fitted.get(m.name) or m.fit(train, freq="D"), holdout_days)
            if params["robust"]:  # the strongest member without the Robust wrapper, to show what it buys
                plain = ETS(n_jobs=params["n_jobs"], alias="ETS-uncleaned")
                evaluated[plain.name] = _with_levels(plain.fit(train, freq="D"), holdout_days)
            ens.backtest_.to_parquet(out / "backtest.parquet")
            train.to_parquet(out / "holdout_train.parquet")  # the backtest's history, for its MASE scale
            series_metrics(actual, evaluated, train).to_parquet(out / "holdout_metrics.parquet")
            cumulative_holdout(actual, ens, evaluated["Ensemble"], holdout_days).to_parquet(out / "holdout_cumulative.parquet")

        # 2. production forecasts (totals and features), 3. reconciliation
        t_fit = time.perf_counter()
        total_model = Ensemble(**params).fit(totals, freq="D")
    robust = next((m for m in total_model.members_ if isinstance(m, Robust)), None)
    if robust is not None:  # each workspace's inferred holiday calendar, for analysts
        robust.calendar_frame().rename(columns={"unique_id": "workspace_id"}).to_parquet(out / "holiday_calendars.parquet")
    bottom_model = Ensemble(**ensemble_params(settings, "feature")).fit(bottom, freq="D")
    if len(bottom_model.backtest_):  # rolling-origin accuracy of the feature/service series, per member
        bottom_model.backtest_.to_parquet(out / "backtest_features.parquet")
        bottom.to_parquet(out / "features_history.parquet")
    frame = forecast_frame(settings, total_model, bottom_model)
    frame.to_parquet(out / "forecast.parquet")
    save_shard_state(out, total_model, bottom_model)
    ref.update(_champion_windows(settings, as_of, total_model, totals, out))
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


