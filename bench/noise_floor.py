"""Benchmark: how forecastable are the generated workspace totals? A clairvoyant lower bound on WAPE.

For each workspace the generator is run ``K + 1`` times. Every run shares the workspace's traits
and its whole random path up to the holdout cutoff (the last ``h`` days); only the randomness
after the cutoff differs. Run 0 is "what happened"; runs 1..K are futures that could have happened.
The **oracle** forecast is the per-day median of runs 1..K: it knows every static trait (trend,
level shifts, agent start dates, future churn dates, spike days, holidays) and the exact state of
every persistent process (per-user busy spells, workspace drift) at the cutoff. No real forecaster
knows that much, so the oracle's holdout WAPE is a **lower bound** on what any model can reach on
this data (up to Monte Carlo error from finite K).

How the paths are shared: every draw the generator makes along the day axis (activity, spells,
drift, agent calls) takes its values for days before the cutoff from one generator stream and
for later days from the run's own stream; draws whose count depends on activity (per-event
noise) come from the run's own stream; all other draws (traits) from the shared stream.
Count distributions (binomial, Poisson) are drawn by inverse CDF from spliced uniforms, so the
shared past never depends on the future. Two small leaks remain, both in the oracle's favour:
agent call rates and spike sizes are scaled by the workspace's mean over the whole window.

For comparison, seasonal naive, ETS, Robust(ETS) and the pipeline's ensemble (its settings, all
workspace totals in one shard) are fitted on run 0's history and scored on the same days. Run 0 is
another draw of the platform ``bench/consumption.py`` scores, so compare the models here with each
other and with the oracle.

    .venv/bin/python bench/noise_floor.py [--workspaces 1000] [--futures 20]
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

import pipelines.simulator.generate as gen  # noqa: E402

END = date(2026, 11, 24)
ROW_LEVEL_CALLERS = {"_user_block", "_agent_rows"}  # their 1-D draws are per event row
INVERSE_CDF = {"binomial": stats.binom.ppf, "poisson": stats.poisson.ppf}


N_PARAMS = {"random": 0, "poisson": 1, "exponential": 1, "dirichlet": 1, "choice": 1}  # others take 2


def _requested_shape(name: str, args: tuple, kwargs: dict) -> tuple[int, ...]:
    k = N_PARAMS.get(name, 2)
    size = kwargs.get("size", args[k] if len(args) > k else None)
    if size is not None:
        return tuple(np.atleast_1d(size).tolist())
    return np.broadcast_shapes(*(np.shape(a) for a in args[:k]))


class SplicedRandom:
    """A numpy Generator look-alike: shared draws before day ``cut``, the run's own from ``cut`` on."""

    def __init__(self, shared: np.random.Generator, own: np.random.Generator, n_days: int, cut: int):
        self.shared, self.own, self.n_days, self.cut = shared, own, n_days, cut

    def __getattr__(self, name: str):
        def draw(*args, **kwargs):
            shape = _requested_shape(name, args, kwargs)
            if len(shape) and shape[-1] == self.n_days:  # along the day axis: splice past and future
                if name in INVERSE_CDF:
                    u = np.clip(self._splice(self.shared.random(shape), self.own.random(shape)), 1e-15, 1 - 1e-15)
                    return INVERSE_CDF[name](u, *np.broadcast_arrays(*args[:2])).astype(np.int64)
                return self._splice(getattr(self.shared, name)(*args, **kwargs), getattr(self.own, name)(*args, **kwargs))
            if len(shape) == 1 and sys._getframe(1).f_code.co_name in ROW_LEVEL_CALLERS:
                return getattr(self.own, name)(*args, **kwargs)  # per-event noise: its count varies by run
            return getattr(self.shared, name)(*args, **kwargs)  # traits

        return draw

    def _splice(self, past: np.ndarray, future: np.ndarray) -> np.ndarray:
        out = np.array(past, copy=True)
        out[..., self.cut:] = np.asarray(future)[..., self.cut:]
        return out


def simulate(plan, w: int, run: int, cut: int) -> np.ndarray:
    """Daily credits (UTC days of the window) of workspace ``w`` in run ``run``."""
    shared = np.random.default_rng(np.random.SeedSequence(plan.seed, spawn_key=(1, w)))
    own = np.random.default_rng(np.random.SeedSequence(plan.seed, spawn_key=(2, w, run)))
    real = np.random.default_rng
    gen.np.random.default_rng = lambda *a, **k: SplicedRandom(shared, own, plan.n_days, cut)
    try:
        (t_us, *_rest, credits, _err, _cnt), _truth = gen._simulate_workspace(plan, w)
    finally:
        gen.np.random.default_rng = real
    epoch1 = int(plan.dates[0].astype(np.int64)) + 1
    day = (t_us // 86_400_000_000 - epoch1).astype(np.int64)
    return np.bincount(day, weights=credits, minlength=plan.n_days - 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspaces", type=int, default=1000)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--futures", type=int, default=20)
    ap.add_argument("--horizon", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-ensemble", action="store_true", help="skip the pipeline's ensemble (about 3 min)")
    args = ap.parse_args()
    from core.settings import limit_threads

    limit_threads(2)
    from models.forecasting import ETS, Ensemble, Robust, SeasonalNaive, mape

    h = args.horizon
    plan = gen._plan_platform(args.workspaces, END - timedelta(days=args.days - 1), END, args.seed, 50.0)
    n_days = plan.n_days - 2  # UTC days in the window
    cut = plan.n_days - 1 - h  # first simulated local day after the cutoff (local day index 1 = first UTC day)
    t0 = time.perf_counter()
    rows, oracle = [], []
    days = pd.date_range(END - timedelta(days=args.days - 1), END, freq="D")
    for w in range(args.workspaces):
        truth = simulate(plan, w, 0, cut)
        futures = np.stack([simulate(plan, w, k, cut)[-h:] for k in range(1, args.futures + 1)])
        if truth.sum() == 0:
            continue
        first = int(np.flatnonzero(truth)[0])
        uid = gen._ws_id(w)
        rows.append(pd.DataFrame({"unique_id": uid, "ds": days[first:], "y": truth[first:]}))
        oracle.append(pd.DataFrame({"unique_id": uid, "ds": days[-h:], "yhat": np.median(futures, axis=0)}))
    elapsed = time.perf_counter() - t0
    series = pd.concat(rows, ignore_index=True)
    cutoff = days[-h - 1]
    train, actual = series[series["ds"] <= cutoff], series[series["ds"] > cutoff]
    long_enough = train.groupby("unique_id").size().loc[lambda s: s >= 28].index
    train, actual = train[train["unique_id"].isin(long_enough)], actual[actual["unique_id"].isin(long_enough)]
    print(f"noise floor: {args.workspaces} workspaces, {args.futures} futures each, h={h}; "
          f"{len(long_enough)} workspaces scored; simulation {elapsed:.0f} s")

    forecasts = {"Oracle (lower bound)": pd.concat(oracle, ignore_index=True),
                 "SeasonalNaive": SeasonalNaive().fit(train).predict(h=h, level=80),
                 "ETS": ETS(n_jobs=2).fit(train).predict(h=h, level=80),
                 "Robust(ETS)": Robust(ETS(n_jobs=2)).fit(train).predict(h=h, level=80)}
    if not args.no_ensemble:  # the pipeline's ensemble for workspace totals, one shard for all
        from core.settings import Settings
        from pipelines.consumption.forecast import ensemble_params

        te = time.perf_counter()
        forecasts["Ensemble (pipeline settings)"] = Ensemble(**ensemble_params(Settings())).fit(train).predict(h=h, level=80)
        print(f"ensemble fit + predict: {time.perf_counter() - te:.0f} s")
    volume = actual.groupby("unique_id")["y"].sum()
    quartile = pd.qcut(volume.rank(method="first"), 4, labels=["Q1 smallest", "Q2", "Q3", "Q4 largest"])
    scale = train.groupby("unique_id")["y"].apply(lambda y: np.mean(np.abs(y.to_numpy()[7:] - y.to_numpy()[:-7])))
    print("Pooled WAPE by volume quartile in the last columns; '30-day total' is the pooled error of each "
          "workspace's 30-day credit total.")
    print("| model | pooled WAPE | median WAPE | median MAPE | median MASE | 30-day total | "
          + " | ".join(quartile.cat.categories) + " |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, fc in forecasts.items():
        j = actual.merge(fc[["unique_id", "ds", "yhat"]], on=["unique_id", "ds"])
        j["ae"] = (j["y"] - j["yhat"]).abs()
        g = j.groupby("unique_id")
        ae, ys = g["ae"].sum(), g["y"].sum()
        per_q = ae.groupby(quartile, observed=True).sum() / ys.groupby(quartile, observed=True).sum()
        mase = (g["ae"].mean() / scale.reindex(ae.index)).replace(np.inf, np.nan).median()
        period = (g["yhat"].sum() - ys).abs().sum() / ys.sum()
        med_mape = g[["y", "yhat"]].apply(lambda d: mape(d["y"], d["yhat"])).median()
        print(f"| {name} | {ae.sum() / ys.sum():.3f} | {(ae / ys.replace(0, np.nan)).median():.3f} | {med_mape:.3f} | "
              f"{mase:.3f} | "
              f"{period:.3f} | "
              + " | ".join(f"{v:.3f}" for v in per_q) + " |")


if __name__ == "__main__":
    main()
