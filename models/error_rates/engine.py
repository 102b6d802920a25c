"""The error-rate model end to end on one panel: prepare, train (with an out-of-time check), score, forecast.

``prepare`` computes baselines, thresholds, breaches and every feature for every day of the panel; ``train``
fits the escalation model on the labelled snapshots before the as-of day (the last ``validation_days`` of
them held out first, to choose the classifier and measure it, then refitted on all) and the forecast's path
parameters; ``score`` turns the as-of day's features into alerts and forecasts. Nothing here reads or writes
files: the pipeline (``pipelines/agent_errors``) does the I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.error_rates.alerts import AlertPolicy, build_alerts
from models.error_rates.baseline import BaselineParams, baselines
from models.error_rates.breaches import ThresholdPolicy, find_breaches, future_breach, thresholds
from models.error_rates.escalation import CLASSIFIER_KINDS, EscalationModel, evaluate, select_and_fit
from models.error_rates.features import MODEL_FEATURES, daily_features, frame_at, threshold_features
from models.error_rates.forecast import AgentState, PathParams, expected_calls, fit_path_params, forecast, forecast_frame
from models.error_rates.panel import AgentPanel

# history the as-of day's features need before the first training snapshot (baseline window + gap + margin)
WARMUP_DAYS = 70


@dataclass(frozen=True)
class EngineConfig:
    horizon: int = 14
    training_days: int = 180
    validation_days: int = 28
    negative_share: float = 0.3
    n_paths: int = 400
    seed: int = 0
    threads: int = 2
    kinds: tuple[str, ...] = CLASSIFIER_KINDS
    thresholds: ThresholdPolicy = field(default_factory=ThresholdPolicy)
    alerts: AlertPolicy = field(default_factory=AlertPolicy)
    baseline: BaselineParams = field(default_factory=BaselineParams)

    def panel_days(self) -> int:
        """Days of history a run needs: warm-up + training snapshots + their label windows + the as-of day."""
        return WARMUP_DAYS + self.training_days + self.horizon + 1


@dataclass
class Prepared:
    panel: AgentPanel
    arrays: dict[str, np.ndarray]
    threshold: np.ndarray
    breach: np.ndarray


def prepare(panel: AgentPanel, config: EngineConfig, override_rate: np.ndarray | None = None,
            override_multiplier: np.ndarray | None = None) -> Prepared:
    base = baselines(panel, config.baseline)
    thr = thresholds(base.rate, config.thresholds, override_rate, override_multiplier)
    br = find_breaches(panel, thr, config.thresholds, base.rate)
    arrays = daily_features(panel, base)
    arrays.update(threshold_features(arrays, thr, br))
    label, days = future_breach(br.breach, config.horizon)
    since = np.full(br.breach.shape, np.nan)
    run_start = np.full(panel.n_agents, np.nan)
    for t in range(panel.n_days):
        run_start = np.where(br.start[:, t], t, np.where(br.breach[:, t], run_start, np.nan))
        since[:, t] = run_start
    arrays.update(label=label, days_to_breach=days, in_breach=br.breach.astype(float), threshold=thr,
                  breach_since_col=since)
    return Prepared(panel=panel, arrays=arrays, threshold=thr, breach=br.breach)


def snapshot_rows(prep: Prepared, columns: np.ndarray, config: EngineConfig) -> pd.DataFrame:
    """Labelled training rows at panel ``columns``: agents with enough volume, not already in breach."""
    fr = frame_at(prep.panel, prep.arrays, columns)
    keep = (fr["calls_7"] >= config.alerts.min_calls_7d) & (fr["in_breach"] == 0) & fr["label"].notna()
    keep &= fr["days_since_call"] < config.alerts.inactive_days
    return fr[keep].reset_index(drop=True)


@dataclass
class Trained:
    model: EscalationModel
    candidates: pd.DataFrame
    path_params: PathParams
    metrics: dict
    n_train: int
    n_positive: int
    valid_model: EscalationModel | None = None  # the chosen kind fitted without the held-out days


def train(prep: Prepared, as_of_col: int, config: EngineConfig) -> Trained:
    """Fit the escalation model on snapshots whose label window ends by the as-of day.

    Raises:
        ValueError: Not enough labelled history (no snapshot, or a single class).
    """
    last = as_of_col - config.horizon
    first = max(WARMUP_DAYS, last - config.training_days + 1, 0)
    if last < first:
        raise ValueError(f"not enough history to train: {as_of_col + 1} days in the panel, "
                         f"{WARMUP_DAYS + config.horizon + 1} needed at least")
    full = snapshot_rows(prep, np.arange(first, last + 1), config)
    cut = last - config.validation_days
    valid = full[full["day"] > prep.panel.start + pd.Timedelta(days=cut)]
    fit_rows = full[full["day"] <= prep.panel.start + pd.Timedelta(days=cut - config.horizon)]
    if len(full) == 0 or full["label"].nunique() < 2:
        raise ValueError(f"escalation model: {len(full)} labelled snapshots with {int(full['label'].sum()) if len(full) else 0}"
                         " breaches; both breaches and quiet snapshots are needed")
    if len(fit_rows) == 0 or fit_rows["label"].nunique() < 2 or len(valid) == 0:
        fit_rows, valid = full, full  # too short for an out-of-time split: in-sample figures, flagged below
    model, candidates, valid_model = select_and_fit(fit_rows, valid, full, MODEL_FEATURES, config.horizon,
                                                    config.seed, config.threads, config.kinds, config.negative_share)
    arrays = prep.arrays
    params = fit_path_params(prep.panel.calls, prep.panel.errors, arrays["baseline_rate"], arrays["rate_3"],
                             prep.threshold, prep.breach, np.arange(first, last + 1), arrays["label"] == 0)
    metrics = {f"oot_{k}": v for k, v in model.metrics.items()}
    metrics["oot_is_out_of_time"] = float(fit_rows is not full)
    if fit_rows is not full:
        params.normal_scale, params.escalation_scale = calibrate(prep, as_of_col, valid_model, params, config)
    return Trained(model=model, candidates=candidates, path_params=params, metrics=metrics, n_train=len(full),
                   n_positive=int(full["label"].sum()), valid_model=valid_model if fit_rows is not full else None)


def _state(prep: Prepared, fr: pd.DataFrame, rows: np.ndarray, col: int, model: EscalationModel,
           config: EngineConfig) -> tuple[AgentState, np.ndarray, np.ndarray]:
    p = model.predict(fr)
    days = model.expected_days(fr)
    state = AgentState(baseline=fr["baseline_rate"].to_numpy(), level=fr["rate_3"].to_numpy(),
                       threshold=fr["threshold"].to_numpy(), p_breach=p, expected_days=days, delay_sd=model.delay_sd,
                       in_breach=fr["in_breach"].to_numpy(dtype=bool),
                       expected_calls=expected_calls(prep.panel.calls[rows], col, config.horizon))
    return state, p, days


def score(prep: Prepared, col: int, model: EscalationModel, params: PathParams, config: EngineConfig,
          rows: np.ndarray | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Alerts (one row per agent) and forecasts (one row per agent and day) as of panel column ``col``.

    Agents with no call for ``inactive_days`` get an alert row (status ``inactive``) but no forecast.
    """
    panel = prep.panel
    rows = np.arange(panel.n_agents) if rows is None else np.asarray(rows)
    fr = frame_at(panel, prep.arrays, col, rows)
    as_of = panel.start + pd.Timedelta(days=col)
    fr["breach_since"] = panel.start + pd.to_timedelta(fr["breach_since_col"], unit="D")
    fr["first_call"] = panel.start + pd.to_timedelta(panel.first_day[rows], unit="D")
    state, p, days = _state(prep, fr, rows, col, model, config)
    contrib = model.contributions(fr)
    alerts = build_alerts(fr, p, days, contrib, model.features, config.alerts, as_of, config.thresholds.ceiling)
    live = (fr["days_since_call"] < config.alerts.inactive_days).to_numpy()
    sel = np.flatnonzero(live)
    sub = AgentState(**{k: (v[sel] if isinstance(v, np.ndarray) else v) for k, v in state.__dict__.items()})
    result = forecast(sub, params, config.horizon, config.n_paths, config.seed)
    keys = fr.loc[live, ["workspace_id", "agent_id"]].reset_index(drop=True)
    fc = forecast_frame(keys, as_of, result, sub.expected_calls)
    return alerts, fc


def _origins(as_of_col: int, config: EngineConfig, n: int, offset: int) -> list[int]:
    cols = [as_of_col - config.horizon - offset - 7 * k for k in range(n)]
    return [c for c in cols if c >= WARMUP_DAYS]


def _live(fr: pd.DataFrame, config: EngineConfig) -> np.ndarray:
    return np.flatnonzero(((fr["days_since_call"] < config.alerts.inactive_days)
                           & (fr["calls_7"] >= config.alerts.min_calls_7d)).to_numpy())


def calibrate(prep: Prepared, as_of_col: int, model: EscalationModel, params: PathParams,
              config: EngineConfig, origins: int = 4) -> tuple[float, float]:
    """``(normal_scale, escalation_scale)``: on forecasts made at held-out origins by ``model`` (fitted without
    them), the least-squares weights (errors ~ a × normal-regime errors + b × errors the escalation paths add,
    weighted by 1 / expected errors) that make forecast failed calls match the observed ones; clipped to
    [0.5, 1.5] and [0.1, 1.5]. (1, 1) when there is nothing to calibrate on."""
    from dataclasses import replace

    panel, h = prep.panel, config.horizon
    raw = replace(params, normal_scale=1.0, escalation_scale=1.0)
    xs, ys = [], []
    for col in _origins(as_of_col, config, origins, offset=3):
        fr = frame_at(panel, prep.arrays, col)
        live = _live(fr, config)
        if len(live) == 0:
            continue
        state, _, _ = _state(prep, fr.iloc[live].reset_index(drop=True), live, col, model, config)
        mix = forecast(state, raw, h, config.n_paths, config.seed)["mean"]
        quiet = replace(state, p_breach=np.zeros_like(state.p_breach), in_breach=np.zeros_like(state.in_breach))
        normal = forecast(quiet, raw, h, config.n_paths, config.seed)["mean"]
        n = panel.calls[live, col + 1: col + 1 + h]
        xs.append(np.stack([(normal * n).ravel(), ((mix - normal) * n).ravel()], axis=1))
        ys.append(panel.errors[live, col + 1: col + 1 + h].ravel())
    if not xs:
        return 1.0, 1.0
    x, y = np.concatenate(xs), np.concatenate(ys)
    w = 1.0 / (x.sum(axis=1) + 1.0)
    xtx = (x * w[:, None]).T @ x
    if np.linalg.cond(xtx) > 1e12:
        return 1.0, 1.0
    a, b = np.linalg.solve(xtx, (x * w[:, None]).T @ y)
    return float(np.clip(a, 0.5, 1.5)), float(np.clip(b, 0.1, 1.5))


def backtest_forecast(prep: Prepared, as_of_col: int, trained: Trained, config: EngineConfig,
                      origins: int = 4) -> dict[str, float]:
    """Interval coverage and error of forecasts made at ``origins`` weekly cut-offs in the held-out period, by the
    model fitted without it, against the observed daily rates (days with at least 5 calls)."""
    model = trained.valid_model
    if model is None:
        return {}
    panel, h = prep.panel, config.horizon
    cols = _origins(as_of_col, config, origins, offset=0)
    hits80 = hits95 = total = 0
    abs_err = naive_err = weight = 0.0
    for col in cols:
        fr = frame_at(panel, prep.arrays, col)
        live = _live(fr, config)
        if len(live) == 0:
            continue
        sub = fr.iloc[live].reset_index(drop=True)
        state, _, _ = _state(prep, sub, live, col, model, config)
        res = forecast(state, trained.path_params, h, config.n_paths, config.seed)
        n = panel.calls[live, col + 1: col + 1 + h]
        e = panel.errors[live, col + 1: col + 1 + h]
        ok = n >= 5
        r = np.where(ok, e / np.maximum(n, 1), np.nan)
        hits80 += int(((r >= res["q10"]) & (r <= res["q90"]))[ok].sum())
        hits95 += int(((r >= res["q025"]) & (r <= res["q975"]))[ok].sum())
        total += int(ok.sum())
        naive = (panel.errors[live, max(0, col - 27): col + 1].sum(axis=1)
                 / np.maximum(panel.calls[live, max(0, col - 27): col + 1].sum(axis=1), 1))
        abs_err += float((np.abs(r - res["mean"]) * n)[ok].sum())
        naive_err += float((np.abs(r - naive[:, None]) * n)[ok].sum())
        weight += float(n[ok].sum())
    if total == 0:
        return {}
    return {"forecast_coverage_80": hits80 / total, "forecast_coverage_95": hits95 / total,
            "forecast_wmae": abs_err / weight, "forecast_wmae_naive_28d": naive_err / weight,
            "forecast_points": float(total)}


__all__ = ["EngineConfig", "Prepared", "Trained", "backtest_forecast", "evaluate", "prepare", "score",
           "snapshot_rows", "train"]
