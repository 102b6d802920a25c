"""``pae peaks``: daily peaks and capacity for any long-format hourly file ``(unique_id, ds, y)``.

    pae peaks --input hourly.csv --horizon-days 7 --level 95 --output peaks.csv

``ds`` is the hour on the series' own clock (no time-zone conversion: local series stay local). Reads and writes
CSV or Parquet (by extension). One row per series per forecast day (the days after its last observed day):
``unique_id, date, peak_hour, peak_value, peak_lower, peak_upper, capacity`` (``models.peaks.daily``), with
``capacity`` the upper bound at ``--level`` of the day's peak, without headroom. Series with less than two weeks
of hours get the daily-profile model, and the command says which.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def peaks_file(input_path: Path, output_path: Path, horizon_days: int = 7, level: int = 95) -> pd.DataFrame:
    """Forecast the daily peaks of every series in a file and write them; returns the written frame."""
    from models.forecasting import ForecastInputError
    from models.peaks import PeakForecaster, peak_table
    from pipelines.forecast_file import _check_extension, read_series

    from core.settings import get_settings

    if not 1 <= horizon_days <= 28:
        raise ForecastInputError(f"--horizon-days must be between 1 and 28, got {horizon_days}.")
    if not 50 <= level <= 99:
        raise ForecastInputError(f"--level must be between 50 and 99, got {level}.")
    out_suffix = _check_extension(output_path, "output")
    df = read_series(input_path)
    missing = {"unique_id", "ds", "y"} - set(df.columns)
    if missing:
        raise ForecastInputError(f"{input_path.name} lacks columns {sorted(missing)}: give a long frame "
                                 "(unique_id, ds, y) with one row per series and hour.")
    try:
        df = df.assign(ds=pd.to_datetime(df["ds"]), y=pd.to_numeric(df["y"]))
    except (ValueError, TypeError) as exc:
        raise ForecastInputError(f"ds must be timestamps and y numbers: {exc}") from exc
    if df["ds"].dt.tz is not None:
        df = df.assign(ds=df["ds"].dt.tz_localize(None))
    members = PeakForecaster.members if df["unique_id"].nunique() > 50 else (*PeakForecaster.members, "MSTL")
    out = peak_table(df, horizon_days, level, members=members, n_jobs=get_settings().threads)
    short = df.groupby("unique_id")["ds"].agg(lambda s: (s.max() - s.min()) / pd.Timedelta(hours=1) + 1)
    for uid in short[short < 14 * 24].index:
        print(f"{uid}: less than two weeks of hourly history ({int(short[uid])} hours): daily-profile model",
              file=sys.stderr)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if out_suffix == ".csv":
        out.to_csv(output_path, index=False)
    else:
        out.to_parquet(output_path, index=False)
    return out


def cmd_peaks(args: argparse.Namespace) -> int:
    from models.forecasting import ForecastInputError

    try:
        out = peaks_file(Path(args.input), Path(args.output), args.horizon_days, args.level)
    except ForecastInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(out)} rows ({out['unique_id'].nunique()} series x {args.horizon_days} days) to {args.output}")
    return 0
