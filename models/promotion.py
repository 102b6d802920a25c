"""Champion/challenger promotion on the same rolling-origin backtest windows (pure: frames in, decision out).

Policy (issue 16): a challenger is promoted only if, on the same backtest windows as the champion,

1. it wins (a strictly better metric) in at least ``min_wins`` of ``reference_windows`` windows (6 of 8),
   scaled to the windows there are: ``ceil(min_wins * n / reference_windows)`` (3 of 4, 9 of 12);
2. its mean metric is better than the champion's by at least ``min_improvement``, relative (2%);
3. with a ``coverage_target``, its mean interval coverage is within ``± coverage_tolerance`` of it.

``lower_is_better`` is True for errors (MASE, WAPE) and False for scores (AUC). Each frame holds one row per
window: ``window`` (the backtest cutoff), ``metric`` (the metric aggregated over the window's series) and,
optionally, ``coverage`` (the share of actuals inside the interval, 0 to 1).

``compare_arms`` compares the A/B arms' realised accuracy (challenger - champion with a seeded workspace-level
bootstrap interval), ``compare_brier_arms`` the same for a classification kind's Brier score (churn);
``pipelines/ab.py`` runs them each night.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

PROMOTE, KEEP = "promote", "keep"
REFERENCE_WINDOWS = 8
CHAMPION_ARM, CHALLENGER_ARM = "champion", "challenger"
CHALLENGER_BETTER, CHAMPION_BETTER, NO_DIFFERENCE, INSUFFICIENT = (
    "challenger_better", "champion_better", "no_difference", "insufficient_data")


@dataclass(frozen=True)
class PromotionDecision:
    """The decision and every figure it rests on; ``reason`` is one line for logs and tags."""

    promote: bool
    reason: str
    n_windows: int
    wins: int
    required_wins: int
    champion_mean: float
    challenger_mean: float
    improvement: float
    min_improvement: float
    lower_is_better: bool
    challenger_coverage: float | None
    coverage_target: float | None
    coverage_tolerance: float
    coverage_ok: bool

    @property
    def decision(self) -> str:
        return PROMOTE if self.promote else KEEP

    def as_dict(self) -> dict:
        """JSON-ready figures (NaN becomes None), with ``decision``."""
        out = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}
        out["decision"] = self.decision
        return out


def required_wins(n_windows: int, min_wins: int = 6, reference_windows: int = REFERENCE_WINDOWS) -> int:
    """Wins needed out of ``n_windows``: ``min_wins`` of ``reference_windows``, scaled (at least 1)."""
    if n_windows < 1:
        raise ValueError("need at least one backtest window")
    return max(1, math.ceil(min_wins * n_windows / reference_windows - 1e-9))


def relative_improvement(champion: float, challenger: float, lower_is_better: bool) -> float:
    """How much better the challenger is, relative to the champion (positive = better; inf if champion is 0)."""
    gain = champion - challenger if lower_is_better else challenger - champion
    if champion == 0:
        return 0.0 if gain == 0 else math.copysign(math.inf, gain)
    return gain / abs(champion)


def _per_window(frame: pd.DataFrame, role: str, need_coverage: bool) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{role}: expected a DataFrame with columns window, metric[, coverage]")
    missing = {"window", "metric"} - set(frame.columns)
    if need_coverage and "coverage" not in frame.columns:
        missing.add("coverage")
    if missing:
        raise ValueError(f"{role} backtest frame lacks column(s) {sorted(missing)}; expected one row per window "
                         "with window, metric and (with a coverage target) coverage")
    if frame.empty:
        raise ValueError(f"{role} backtest frame has no windows")
    dup = frame["window"][frame["window"].duplicated()]
    if not dup.empty:
        raise ValueError(f"{role} backtest frame has several rows for window(s) {sorted(map(str, dup.unique()))}; "
                         "aggregate the metric per window first")
    metric = pd.to_numeric(frame["metric"], errors="coerce")
    if not np.isfinite(metric.to_numpy(dtype=float)).all():
        raise ValueError(f"{role} backtest frame has a missing or non-finite metric")
    out = pd.DataFrame({"window": frame["window"].to_numpy(), "metric": metric.to_numpy(dtype=float)})
    if "coverage" in frame.columns:
        out["coverage"] = pd.to_numeric(frame["coverage"], errors="coerce").to_numpy(dtype=float)
    return out.set_index("window")


def compare_on_windows(champion: pd.DataFrame, challenger: pd.DataFrame, *, lower_is_better: bool = True,
                       min_wins: int = 6, min_improvement: float = 0.02, coverage_target: float | None = None,
                       coverage_tolerance: float = 0.05,
                       reference_windows: int = REFERENCE_WINDOWS) -> PromotionDecision:
    """Decide whether ``challenger`` replaces ``champion`` (policy in the module docstring).

    Raises:
        ValueError: a frame lacks a column, repeats a window or has a non-finite metric, or the two frames
            are not on the same windows.
    """
    if min_wins < 1 or reference_windows < 1 or min_wins > reference_windows:
        raise ValueError(f"min_wins must be between 1 and reference_windows ({reference_windows}), got {min_wins}")
    if min_improvement < 0 or coverage_tolerance < 0:
        raise ValueError("min_improvement and coverage_tolerance must be >= 0")
    if coverage_target is not None and not 0 < coverage_target <= 1:
        raise ValueError(f"coverage_target is a share between 0 and 1, got {coverage_target}")
    champ = _per_window(champion, "champion", need_coverage=False)
    chall = _per_window(challenger, "challenger", need_coverage=coverage_target is not None)
    only_champ = set(champ.index) - set(chall.index)
    only_chall = set(chall.index) - set(champ.index)
    if only_champ or only_chall:
        raise ValueError("champion and challenger must be compared on the same backtest windows; "
                         f"only champion: {sorted(map(str, only_champ))}, only challenger: {sorted(map(str, only_chall))}")
    chall = chall.loc[champ.index]
    n = len(champ)
    diff = champ["metric"] - chall["metric"] if lower_is_better else chall["metric"] - champ["metric"]
    wins = int((diff > 0).sum())
    need = required_wins(n, min_wins, reference_windows)
    champ_mean, chall_mean = float(champ["metric"].mean()), float(chall["metric"].mean())
    improvement = relative_improvement(champ_mean, chall_mean, lower_is_better)

    coverage = None
    coverage_ok = True
    if coverage_target is not None:
        cov = chall["coverage"].dropna()
        coverage = float(cov.mean()) if not cov.empty else None
        coverage_ok = coverage is not None and abs(coverage - coverage_target) <= coverage_tolerance + 1e-12

    failures = []
    if wins < need:
        failures.append(f"won {wins} of {n} windows (needs {need})")
    if not improvement >= min_improvement - 1e-12:
        failures.append(f"mean {chall_mean:.4f} vs {champ_mean:.4f} is {improvement:+.1%} (needs {min_improvement:+.1%})")
    if not coverage_ok:
        shown = "unknown" if coverage is None else f"{coverage:.1%}"
        failures.append(f"coverage {shown} outside {coverage_target:.0%} ± {coverage_tolerance:.0%}")
    promote = not failures
    if promote:
        cov_note = f", coverage {coverage:.1%}" if coverage is not None else ""
        reason = (f"promote: won {wins} of {n} windows (needs {need}), mean {chall_mean:.4f} vs "
                  f"{champ_mean:.4f} ({improvement:+.1%}){cov_note}")
    else:
        reason = "keep: " + "; ".join(failures)
    return PromotionDecision(promote=promote, reason=reason, n_windows=n, wins=wins, required_wins=need,
                             champion_mean=champ_mean, challenger_mean=chall_mean, improvement=float(improvement),
                             min_improvement=min_improvement, lower_is_better=lower_is_better,
                             challenger_coverage=coverage, coverage_target=coverage_target,
                             coverage_tolerance=coverage_tolerance, coverage_ok=coverage_ok)


@dataclass(frozen=True)
class ArmComparison:
    """The A/B arms' realised error: challenger - champion, with a bootstrap interval, and the verdict."""

    verdict: str
    reason: str
    metric: str
    workspaces_champion: int
    workspaces_challenger: int
    workspace_days_champion: int
    workspace_days_challenger: int
    metric_champion: float | None
    metric_challenger: float | None
    wape_champion: float | None
    wape_challenger: float | None
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    relative_diff: float | None
    relative_ci_low: float | None
    relative_ci_high: float | None
    confidence: float
    min_improvement: float
    n_boot: int

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


ARM_COLUMNS = ("workspace_id", "arm", "abs_error", "naive_abs_error", "actual_total", "workspace_days")


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def compare_arms(per_workspace: pd.DataFrame, *, min_workspace_days: int = 200, min_improvement: float = 0.02,
                 n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> ArmComparison:
    """Compare the A/B arms' realised accuracy (lower is better).

    The metric is each arm's pooled error relative to a weekly seasonal naive on the same days,
    ``sum(abs_error) / sum(naive_abs_error)`` (MASE-like, so arms of different workspaces compare fairly). The
    interval resamples workspaces with replacement within each arm (``n_boot`` times, ``seed``), since a
    workspace's days are not independent. Verdict: ``challenger_better`` when the whole interval of the relative
    difference is at least ``min_improvement`` better, ``champion_better`` when it is entirely worse (> 0),
    ``no_difference`` otherwise, ``insufficient_data`` when an arm has fewer than ``min_workspace_days`` scored
    workspace-days or fewer than 2 workspaces.

    Args:
        per_workspace: one row per workspace × arm with ``workspace_id, arm, abs_error, naive_abs_error,
            actual_total, workspace_days`` summed over the window.
    """
    missing = set(ARM_COLUMNS) - set(per_workspace.columns)
    if missing:
        raise ValueError(f"per-workspace accuracy lacks column(s) {sorted(missing)}; expected {list(ARM_COLUMNS)}")
    unknown = set(per_workspace["arm"]) - {CHAMPION_ARM, CHALLENGER_ARM}
    if unknown:
        raise ValueError(f"unknown arm(s) {sorted(map(str, unknown))}; expected {CHAMPION_ARM!r} or {CHALLENGER_ARM!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    frame = per_workspace.dropna(subset=["abs_error", "naive_abs_error"])
    arms = {a: frame[frame["arm"] == a] for a in (CHAMPION_ARM, CHALLENGER_ARM)}
    sums = {a: (f["abs_error"].to_numpy(float), f["naive_abs_error"].to_numpy(float), f["actual_total"].to_numpy(float))
            for a, f in arms.items()}
    days = {a: int(f["workspace_days"].sum()) for a, f in arms.items()}
    point = {a: float(_ratio(np.array([s[0].sum()]), np.array([s[1].sum()]))[0]) for a, s in sums.items()}
    wape = {a: float(_ratio(np.array([s[0].sum()]), np.array([s[2].sum()]))[0]) for a, s in sums.items()}
    base = dict(metric="error_vs_seasonal_naive", workspaces_champion=len(arms[CHAMPION_ARM]),
                workspaces_challenger=len(arms[CHALLENGER_ARM]), workspace_days_champion=days[CHAMPION_ARM],
                workspace_days_challenger=days[CHALLENGER_ARM], metric_champion=point[CHAMPION_ARM],
                metric_challenger=point[CHALLENGER_ARM], wape_champion=wape[CHAMPION_ARM],
                wape_challenger=wape[CHALLENGER_ARM], confidence=confidence, min_improvement=min_improvement,
                n_boot=n_boot)
    short = [a for a in arms if days[a] < min_workspace_days or len(arms[a]) < 2
             or not math.isfinite(point[a]) or point[a] <= 0]
    if short:
        detail = ", ".join(f"{a} {len(arms[a])} workspaces / {days[a]} workspace-days" for a in arms)
        return ArmComparison(verdict=INSUFFICIENT, diff=None, ci_low=None, ci_high=None, relative_diff=None,
                             relative_ci_low=None, relative_ci_high=None,
                             reason=f"insufficient data: {detail} (each arm needs {min_workspace_days} "
                                    "workspace-days, 2 workspaces and a non-zero naive error)", **base)
    rng = np.random.default_rng(seed)
    boot = {}
    for a, (err, naive, _) in sums.items():
        idx = rng.integers(0, len(err), size=(n_boot, len(err)))
        boot[a] = _ratio(err[idx].sum(axis=1), naive[idx].sum(axis=1))
    diffs = boot[CHALLENGER_ARM] - boot[CHAMPION_ARM]
    rel = _ratio(boot[CHALLENGER_ARM], boot[CHAMPION_ARM]) - 1
    tail = (1 - confidence) / 2 * 100
    ci_low, ci_high = (float(x) for x in np.nanpercentile(diffs, [tail, 100 - tail]))
    rel_low, rel_high = (float(x) for x in np.nanpercentile(rel, [tail, 100 - tail]))
    diff = point[CHALLENGER_ARM] - point[CHAMPION_ARM]
    relative = point[CHALLENGER_ARM] / point[CHAMPION_ARM] - 1
    if rel_high <= -min_improvement:
        verdict = CHALLENGER_BETTER
    elif rel_low > 0:
        verdict = CHAMPION_BETTER
    else:
        verdict = NO_DIFFERENCE
    reason = (f"{verdict}: challenger {point[CHALLENGER_ARM]:.4f} vs champion {point[CHAMPION_ARM]:.4f} "
              f"({relative:+.1%}, {confidence:.0%} CI {rel_low:+.1%} to {rel_high:+.1%}; promotion needs the "
              f"interval below {-min_improvement:+.1%})")
    return ArmComparison(verdict=verdict, reason=reason, diff=diff, ci_low=ci_low, ci_high=ci_high,
                         relative_diff=relative, relative_ci_low=rel_low, relative_ci_high=rel_high, **base)


BRIER_ARM_COLUMNS = ("workspace_id", "arm", "brier_sum", "n")


def compare_brier_arms(per_workspace: pd.DataFrame, *, min_scored: int = 200, min_improvement: float = 0.02,
                       n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> ArmComparison:
    """Compare the A/B arms' realised Brier score of a classification kind (e.g. churn; lower is better).

    Each arm's metric is its pooled Brier score, ``sum(brier_sum) / sum(n)`` over the window; the interval and the
    verdict are :func:`compare_arms`'s (the same seeded bootstrap resampling workspaces within each arm, the same
    thresholds), with ``min_scored`` scored rows (e.g. users with a known outcome) per arm in place of
    workspace-days: ``workspace_days_*`` hold the scored rows and ``wape_*`` are None.

    Args:
        per_workspace: one row per workspace × arm with ``workspace_id, arm, brier_sum`` (the sum of
            ``(probability - outcome)²``) and ``n`` (the rows scored) over the window.
    """
    missing = set(BRIER_ARM_COLUMNS) - set(per_workspace.columns)
    if missing:
        raise ValueError(f"per-workspace outcomes lack column(s) {sorted(missing)}; expected {list(BRIER_ARM_COLUMNS)}")
    n = per_workspace["n"].astype(float)
    frame = per_workspace.assign(abs_error=per_workspace["brier_sum"].astype(float), naive_abs_error=n,
                                 actual_total=n, workspace_days=per_workspace["n"].astype(int))
    result = compare_arms(frame, min_workspace_days=min_scored, min_improvement=min_improvement, n_boot=n_boot,
                          confidence=confidence, seed=seed)
    reason = (result.reason.replace("workspace-days", "scored rows").replace(" and a non-zero naive error",
                                                                             " and a non-zero Brier score")
              if result.verdict == INSUFFICIENT else f"Brier {result.reason}")
    return replace(result, metric="brier", wape_champion=None, wape_challenger=None, reason=reason)
