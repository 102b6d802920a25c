"""Champion/challenger promotion on the same backtest windows (issue 16): wins, relative gain, coverage."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from models.promotion import compare_on_windows, required_wins

CUTOFFS = pd.date_range("2026-06-01", periods=8, freq="14D")


def frame(metric, coverage=None, windows=CUTOFFS) -> pd.DataFrame:
    out = pd.DataFrame({"window": windows[: len(metric)], "metric": metric})
    if coverage is not None:
        out["coverage"] = coverage
    return out


CHAMP = frame([1.00, 0.95, 1.10, 0.90, 1.05, 1.00, 0.98, 1.02])


def test_promotes_when_it_wins_six_of_eight_by_more_than_two_percent():
    chall = frame(CHAMP["metric"] * [0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 1.05, 1.05])
    d = compare_on_windows(CHAMP, chall)
    assert d.promote and d.decision == "promote"
    assert (d.wins, d.required_wins, d.n_windows) == (6, 6, 8)
    assert d.improvement == pytest.approx((CHAMP["metric"].mean() - chall["metric"].mean()) / CHAMP["metric"].mean())
    assert d.reason.startswith("promote: won 6 of 8")
    json.dumps(d.as_dict())  # every figure is JSON-ready


def test_five_wins_of_eight_is_not_enough_even_with_a_large_gain():
    chall = frame(CHAMP["metric"] * [0.5, 0.5, 0.5, 0.5, 0.5, 1.01, 1.01, 1.01])
    d = compare_on_windows(CHAMP, chall)
    assert not d.promote and d.decision == "keep"
    assert d.wins == 5 and "won 5 of 8 windows (needs 6)" in d.reason


def test_winning_every_window_by_one_percent_is_not_enough():
    d = compare_on_windows(CHAMP, frame(CHAMP["metric"] * 0.99))
    assert not d.promote and d.wins == 8
    assert d.improvement == pytest.approx(0.01) and "needs +2.0%" in d.reason


def test_ties_are_not_wins():
    d = compare_on_windows(CHAMP, CHAMP.copy())
    assert d.wins == 0 and not d.promote


def test_higher_is_better_for_auc():
    champ = frame([0.70] * 8)
    better = frame([0.75] * 8)
    assert compare_on_windows(champ, better, lower_is_better=False).promote
    assert not compare_on_windows(better, champ, lower_is_better=False).promote
    assert not compare_on_windows(champ, better, lower_is_better=True).promote


def test_min_wins_scales_with_fewer_windows():
    assert [required_wins(n) for n in (1, 2, 3, 4, 6, 8, 12)] == [1, 2, 3, 3, 5, 6, 9]
    champ = frame([1.0, 1.0, 1.0, 1.0])
    assert compare_on_windows(champ, frame([0.9, 0.9, 0.9, 1.01])).promote  # 3 of 4
    d = compare_on_windows(champ, frame([0.8, 0.8, 1.01, 1.01]))
    assert not d.promote and d.required_wins == 3


def test_coverage_must_be_within_tolerance_of_target():
    better = CHAMP["metric"] * 0.9
    ok = compare_on_windows(CHAMP, frame(better, coverage=[0.92] * 8), coverage_target=0.95)
    assert ok.promote and ok.coverage_ok and ok.challenger_coverage == pytest.approx(0.92)
    low = compare_on_windows(CHAMP, frame(better, coverage=[0.85] * 8), coverage_target=0.95)
    assert not low.promote and not low.coverage_ok and "coverage 85.0% outside 95% ± 5%" in low.reason
    high = compare_on_windows(CHAMP, frame(better, coverage=[1.0] * 8), coverage_target=0.9)
    assert not high.promote  # over-wide intervals are not rewarded either
    unknown = compare_on_windows(CHAMP, frame(better, coverage=[np.nan] * 8), coverage_target=0.95)
    assert not unknown.promote and "coverage unknown" in unknown.reason
    # without a target, coverage is not checked
    assert compare_on_windows(CHAMP, frame(better, coverage=[0.5] * 8)).promote


def test_window_order_does_not_matter():
    chall = frame(CHAMP["metric"] * 0.9).iloc[::-1]
    assert compare_on_windows(CHAMP, chall).wins == 8


def test_mismatched_windows_are_an_error():
    shifted = frame(CHAMP["metric"], windows=CUTOFFS + pd.Timedelta(days=1))
    with pytest.raises(ValueError, match="same backtest windows"):
        compare_on_windows(CHAMP, shifted)
    with pytest.raises(ValueError, match="same backtest windows"):
        compare_on_windows(CHAMP, CHAMP.iloc[:7])


@pytest.mark.parametrize("bad, match", [
    (pd.DataFrame({"window": CUTOFFS}), "lacks column"),
    (pd.DataFrame({"window": [], "metric": []}), "no windows"),
    (frame([1.0] * 8, windows=pd.DatetimeIndex([CUTOFFS[0]] * 8)), "several rows for window"),
    (frame([1.0] * 7 + [np.nan]), "non-finite metric"),
])
def test_bad_frames_get_a_clear_error(bad, match):
    with pytest.raises(ValueError, match=match):
        compare_on_windows(CHAMP, bad)


def test_coverage_target_needs_a_coverage_column():
    with pytest.raises(ValueError, match="coverage"):
        compare_on_windows(CHAMP, CHAMP, coverage_target=0.95)


# A/B: the arms' realised accuracy


def arms(champion_ratio: float, challenger_ratio: float, n: int = 40, days: int = 20, seed: int = 0) -> pd.DataFrame:
    """Workspaces of both arms whose error is ``ratio`` × their seasonal naive's, with noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for arm, ratio in (("champion", champion_ratio), ("challenger", challenger_ratio)):
        for i in range(n):
            naive = float(rng.gamma(2, 50))
            rows.append((f"{arm}-{i}", arm, naive * ratio * rng.uniform(0.9, 1.1), naive, naive * 5, days))
    return pd.DataFrame(rows, columns=["workspace_id", "arm", "abs_error", "naive_abs_error", "actual_total",
                                       "workspace_days"])


def test_arms_a_clearly_better_challenger_earns_promotion():
    from models.promotion import compare_arms

    r = compare_arms(arms(0.9, 0.7), min_workspace_days=100)
    assert r.verdict == "challenger_better"
    assert r.relative_diff == pytest.approx(r.metric_challenger / r.metric_champion - 1)
    assert r.relative_ci_low <= r.relative_diff <= r.relative_ci_high <= -0.02
    assert r.ci_low <= r.diff <= r.ci_high < 0
    assert (r.workspaces_champion, r.workspace_days_challenger) == (40, 800)
    assert compare_arms(arms(0.9, 0.7), min_workspace_days=100) == r  # seeded


def test_arms_equal_champion_better_and_too_little_data():
    from models.promotion import compare_arms

    same = compare_arms(arms(0.8, 0.8), min_workspace_days=100)
    assert same.verdict == "no_difference" and same.relative_ci_low < 0 < same.relative_ci_high
    worse = compare_arms(arms(0.7, 0.9), min_workspace_days=100)
    assert worse.verdict == "champion_better" and worse.relative_ci_low > 0
    small = compare_arms(arms(0.9, 0.5, n=3, days=2), min_workspace_days=100)
    assert small.verdict == "insufficient_data" and small.diff is None and "6 workspace-days" in small.reason
    json.dumps(small.as_dict())


def test_arms_bad_input():
    from models.promotion import compare_arms

    with pytest.raises(ValueError, match="lacks column"):
        compare_arms(arms(1, 1).drop(columns="naive_abs_error"))
    with pytest.raises(ValueError, match="unknown arm"):
        compare_arms(arms(1, 1).assign(arm="treatment"))


def brier_arms(champion: float, challenger: float, n: int = 30, users: int = 20, seed: int = 0) -> pd.DataFrame:
    """Per workspace × arm Brier sums: each user's squared error around the arm's mean Brier."""
    rng = np.random.default_rng(seed)
    rows = []
    for arm, brier in (("champion", champion), ("challenger", challenger)):
        for i in range(n):
            rows.append((f"{arm}-{i}", arm, float(users * brier * rng.uniform(0.9, 1.1)), users))
    return pd.DataFrame(rows, columns=["workspace_id", "arm", "brier_sum", "n"])


def test_brier_arms_compare_pooled_brier_with_the_workspace_bootstrap():
    from models.promotion import compare_brier_arms

    better = compare_brier_arms(brier_arms(0.20, 0.15), min_scored=100)
    assert better.verdict == "challenger_better" and better.metric == "brier"
    assert better.metric_champion == pytest.approx(
        brier_arms(0.20, 0.15).query("arm == 'champion'")["brier_sum"].sum() / (30 * 20))
    assert better.relative_ci_high <= -0.02 and better.wape_champion is None
    assert (better.workspaces_challenger, better.workspace_days_challenger) == (30, 600)  # rows scored
    assert compare_brier_arms(brier_arms(0.20, 0.15), min_scored=100) == better  # seeded
    assert compare_brier_arms(brier_arms(0.15, 0.20), min_scored=100).verdict == "champion_better"
    few = compare_brier_arms(brier_arms(0.2, 0.1, n=3, users=5), min_scored=100)
    assert few.verdict == "insufficient_data" and "15 scored rows" in few.reason
    with pytest.raises(ValueError, match="lack column"):
        compare_brier_arms(brier_arms(0.2, 0.2).drop(columns="brier_sum"))
