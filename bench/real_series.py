"""Benchmark: the ensemble on real public series, daily and hourly, against statsforecast's own models.

The series are real public data extracted once from PyPI packages into ``bench/data/real/`` (page views,
transit ridership, births, electricity demand, bike rentals, flights, bank calls, temperatures; sources
and licences in its README), so this runs offline. For each series, a rolling-origin holdout: the last
``--windows`` (3) windows of ``h`` = 30 days (daily) or 168 hours (hourly); each window's models see only
the history before it. Models:

* **MSTL (statsforecast)**: statsforecast's own ``MSTL`` (default AutoETS trend), season lengths 7 and 365
  for daily data (7 only for series shorter than two years: STL needs two full seasons) and 24 and 168
  for hourly data;
* **AutoETS (statsforecast)**: ``AutoETS`` with its default full search, season 7 (daily) / 24 (hourly);
* **SeasonalNaive (statsforecast)**;
* **Prophet**: the library with its defaults (yearly season from two years of history), intervals from
  300 seeded posterior-predictive samples (``--no-prophet`` skips it);
* **Ensemble (pae forecast)**: the forecaster ``pae forecast --model ensemble`` builds
  (``pipelines.forecast_file.build_forecaster``), fitted on one file per frequency like the command;
* with ``--members``, each of the ensemble's default members alone (Robust-wrapped as in the ensemble).

Printed: per frequency and overall, the median (and mean) MASE over series (errors scaled by each
series' in-sample seasonal-naive MAE, season 7 / 24, up to the window's cutoff; mean over the windows),
pooled 80% and 95% interval coverage, and wall time; the ratio Ensemble / MSTL of the median MASE; the
ensemble's weight choices; and the MASE of every series.

    OMP_NUM_THREADS=2 .venv/bin/python bench/real_series.py [--windows 3] [--no-prophet] [--members] [--freq D h]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "real"
FREQS = {
    "D": {"file": "daily.csv.gz", "h": 30, "seasons": (7, 365), "name": "daily"},
    "h": {"file": "hourly.csv.gz", "h": 168, "seasons": (24, 168), "name": "hourly"},
}
LEVELS = (80, 95)
MSTL_NAME, ENSEMBLE_NAME = "MSTL (statsforecast)", "Ensemble (pae forecast)"
Runner = Callable[[pd.DataFrame, int, str], pd.DataFrame]


def load(freq: str) -> pd.DataFrame:
    df = pd.read_csv(DATA / FREQS[freq]["file"], parse_dates=["ds"])
    return df.sort_values(["unique_id", "ds"]).reset_index(drop=True)


def holdout_windows(df: pd.DataFrame, h: int, n_windows: int):
    """``(window, train, test)`` from the earliest window to the last; cut relative to each series' end."""
    from_end = df.groupby("unique_id").cumcount(ascending=False)
    for k in range(n_windows, 0, -1):
        yield n_windows - k, df[from_end >= k * h], df[(from_end < k * h) & (from_end >= (k - 1) * h)]


# --------------------------------------------------------------------------- models


def run_statsforecast(make_for_length: Callable[[int, str], object]) -> Runner:
    """A runner that groups series by the model they get (e.g. MSTL without its yearly season when short)."""

    def run(train: pd.DataFrame, h: int, freq: str) -> pd.DataFrame:
        from statsforecast import StatsForecast

        lengths = train.groupby("unique_id").size()
        parts = []
        for ids in lengths.groupby(lambda uid: str(_seasons(make_for_length(int(lengths[uid]), freq)))).groups.values():
            model = make_for_length(int(lengths[ids[0]]), freq)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fc = StatsForecast(models=[model], freq=freq, n_jobs=1).forecast(
                    df=train[train["unique_id"].isin(ids)], h=h, level=list(LEVELS))
            alias = next(c for c in fc.columns if c not in ("unique_id", "ds") and "-lo-" not in c and "-hi-" not in c)
            parts.append(fc.rename(columns={c: c.replace(alias, "yhat").replace("yhat-", "") for c in fc.columns}))
        return pd.concat(parts, ignore_index=True)

    return run


def _seasons(model) -> tuple:
    season = getattr(model, "season_length", 1)
    return tuple(season) if isinstance(season, list) else (season,)


def mstl_model(n: int, freq: str):
    from statsforecast.models import MSTL

    seasons = [m for m in FREQS[freq]["seasons"] if n >= 2 * m]
    return MSTL(season_length=seasons or [FREQS[freq]["seasons"][0]])


def ets_model(n: int, freq: str):
    from statsforecast.models import AutoETS

    return AutoETS(season_length=FREQS[freq]["seasons"][0])


def snaive_model(n: int, freq: str):
    from statsforecast.models import SeasonalNaive

    return SeasonalNaive(season_length=FREQS[freq]["seasons"][0])


def run_prophet(train: pd.DataFrame, h: int, freq: str) -> pd.DataFrame:
    from models.forecasting.members import _import_prophet

    prophet_cls = _import_prophet()  # the library, its INFO chatter silenced
    parts = []
    for uid, g in train.groupby("unique_id"):
        model = prophet_cls(uncertainty_samples=300).fit(g[["ds", "y"]])
        future = model.make_future_dataframe(periods=h, freq=freq, include_history=False)
        np.random.seed(0)
        samples = model.predictive_samples(future)["yhat"]
        model.uncertainty_samples = 0
        part = pd.DataFrame({"unique_id": uid, "ds": future["ds"], "yhat": model.predict(future)["yhat"].to_numpy()})
        for lv in LEVELS:
            part[f"lo-{lv}"] = np.quantile(samples, 0.5 - lv / 200, axis=1)
            part[f"hi-{lv}"] = np.quantile(samples, 0.5 + lv / 200, axis=1)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _levels_frame(model, h: int) -> pd.DataFrame:
    out = None
    for lv in LEVELS:
        f = model.predict(h, lv).rename(columns={"yhat_lower": f"lo-{lv}", "yhat_upper": f"hi-{lv}"})
        out = f if out is None else out.merge(f.drop(columns="yhat"), on=["unique_id", "ds"])
    return out


def run_ensemble(choices: list) -> Runner:
    def run(train: pd.DataFrame, h: int, freq: str) -> pd.DataFrame:
        from core.settings import get_settings
        from pipelines.forecast_file import build_forecaster

        model = build_forecaster("ensemble", train["unique_id"].nunique(), h, get_settings().threads)
        fc = _levels_frame(model.fit(train, freq), h)
        choices.append((freq, model.weights_))
        return fc

    return run


def run_member(factory: Callable[[], object]) -> Runner:
    def run(train: pd.DataFrame, h: int, freq: str) -> pd.DataFrame:
        return _levels_frame(factory().fit(train, freq), h)

    return run


# --------------------------------------------------------------------------- scoring


def score(train: pd.DataFrame, test: pd.DataFrame, fc: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Per series: MASE of the window, points and hits inside the 80/95% intervals."""
    from models.forecasting import Panel
    from models.forecasting.panel import mase_scale

    panel = Panel.from_frame(train, freq)
    scale = pd.Series(mase_scale(panel), index=panel.ids)
    m = test.merge(fc, on=["unique_id", "ds"], how="left")
    if m["yhat"].isna().any():
        raise RuntimeError(f"{int(m['yhat'].isna().sum())} test points have no forecast")
    m["abs_err"] = (m["y"] - m["yhat"]).abs()
    for lv in LEVELS:
        m[f"hit_{lv}"] = (m["y"] >= m[f"lo-{lv}"]) & (m["y"] <= m[f"hi-{lv}"])
    g = m.groupby("unique_id")
    out = g.agg(mae=("abs_err", "mean"), n=("y", "size"), **{f"hit_{lv}": (f"hit_{lv}", "sum") for lv in LEVELS})
    out["mase"] = out["mae"] / scale.reindex(out.index)
    return out.reset_index()


def summary_table(rows: pd.DataFrame) -> pd.DataFrame:
    per_series = rows.groupby(["model", "unique_id"]).agg(
        mase=("mase", "mean"), n=("n", "sum"), **{f"hit_{lv}": (f"hit_{lv}", "sum") for lv in LEVELS})
    g = per_series.groupby(level="model")
    table = pd.DataFrame({"n_series": g.size(), "median_mase": g["mase"].median(), "mean_mase": g["mase"].mean(),
                          **{f"coverage_{lv}": g[f"hit_{lv}"].sum() / g["n"].sum() for lv in LEVELS}})
    return table.sort_values("median_mase")


def _print_table(df: pd.DataFrame) -> None:
    df = df.reset_index()
    cols = list(df.columns)
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in df.itertuples(index=False):
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--windows", type=int, default=3, help="holdout windows per series (default 3)")
    ap.add_argument("--freq", nargs="+", default=["D", "h"], choices=list(FREQS))
    ap.add_argument("--no-prophet", action="store_true", help="skip the Prophet baseline")
    ap.add_argument("--members", action="store_true", help="also score each default ensemble member alone")
    args = ap.parse_args()

    from core.settings import get_settings, limit_threads

    limit_threads(2)
    warnings.filterwarnings("ignore", message="Requested Holidays are available only")  # births of the 1980s
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("models.forecasting").setLevel(logging.ERROR)  # per-series fallbacks are counted below
    choices: list = []
    runners: dict[str, Runner] = {
        MSTL_NAME: run_statsforecast(mstl_model),
        "AutoETS (statsforecast)": run_statsforecast(ets_model),
        "SeasonalNaive (statsforecast)": run_statsforecast(snaive_model),
    }
    if not args.no_prophet:
        runners["Prophet"] = run_prophet
    runners[ENSEMBLE_NAME] = run_ensemble(choices)
    if args.members:
        from models.forecasting import default_members

        for member in default_members(n_jobs=get_settings().threads):
            if member.name != "SeasonalNaive":
                runners[f"member: {member.name}"] = run_member(member.clone)

    rows, seconds = [], {}
    for freq in args.freq:
        df, h = load(freq), FREQS[freq]["h"]
        lengths = df.groupby("unique_id").size()
        print(f"{FREQS[freq]['name']}: {len(lengths)} series, {lengths.min()}-{lengths.max()} points, h={h}, "
              f"{args.windows} holdout windows", flush=True)
        for name, run in runners.items():
            t0 = time.perf_counter()
            for w, train, test in holdout_windows(df, h, args.windows):
                rows.append(score(train, test, run(train, h, freq), freq).assign(model=name, freq=freq, window=w))
            seconds[(name, freq)] = time.perf_counter() - t0
            print(f"  {name}: {seconds[(name, freq)]:.1f} s", flush=True)
    rows = pd.concat(rows, ignore_index=True)

    ratios = {}
    for label, part in [(FREQS[f]["name"], rows[rows["freq"] == f]) for f in args.freq] + [("all", rows)]:
        table = summary_table(part)
        table["seconds"] = [sum(s for (n, f), s in seconds.items() if n == m and (label == "all" or FREQS[f]["name"] == label))
                            for m in table.index]
        print(f"\n{label} series ({table['n_series'].max()}), rolling-origin holdout, {args.windows} windows:")
        _print_table(table)
        if {ENSEMBLE_NAME, MSTL_NAME} <= set(table.index):
            ratios[label] = table.loc[ENSEMBLE_NAME, "median_mase"] / table.loc[MSTL_NAME, "median_mase"]
    print("\nmedian MASE ratio Ensemble / MSTL (target <= 0.85): "
          + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items()))

    print("\nEnsemble weight choices (per holdout window and frequency):")
    for freq, weights in choices:
        members = [c for c in weights.columns if c not in ("unique_id", "group", "choice")]
        mean = weights[members].mean().round(2)
        print(f"  {FREQS[freq]['name']}: {weights['choice'].value_counts().to_dict()}; mean weights "
              f"{mean[mean > 0].to_dict()}")

    per_series = rows.groupby(["freq", "unique_id", "model"])["mase"].mean().unstack("model")
    print("\nMASE per series (mean over the windows):")
    _print_table(per_series.reset_index("freq"))


if __name__ == "__main__":
    main()
