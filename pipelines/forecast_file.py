"""``pae forecast``: forecast any long-format series file ``(unique_id, ds, y)``.

    pae forecast --input series.csv --horizon 30 --freq D --level 95 --output forecast.csv

Reads CSV or Parquet and writes CSV or Parquet, chosen by file extension. The output has one row
per series and step: ``(unique_id, ds, yhat, yhat_lower, yhat_upper)``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from core.settings import get_settings
from models.forecasting import MODELS, ForecastInputError

PROPHET_MAX_SERIES = 20
"""The ensemble includes Prophet only up to this many series: it is refitted per backtest window
at about 0.15-0.5 s per series and fit."""

_READERS = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet}


def _check_extension(path: Path, what: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        raise ForecastInputError(f"The {what} file must end in .csv, .parquet or .pq; got {path.name!r}.")
    return suffix


def read_series(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file of series.

    Raises:
        ForecastInputError: If the file is missing, has another extension or cannot be parsed.
    """
    suffix = _check_extension(path, "input")
    if not path.is_file():
        raise ForecastInputError(f"Input file {str(path)!r} not found.")
    try:
        return _READERS[suffix](path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise ForecastInputError(f"Could not read {str(path)!r} as {suffix[1:]}: {exc}") from exc


def build_forecaster(model: str, n_series: int, horizon: int, n_jobs: int = 1):
    """The forecaster ``pae forecast --model <model>`` fits (also used by ``bench/real_series.py``).

    Args:
        model: A key of ``MODELS`` (lower case, ``_`` separated).
        n_series: Series in the input; the ensemble includes Prophet up to :data:`PROPHET_MAX_SERIES`.
        horizon: Steps to forecast; the ensemble backtests (and calibrates its intervals) on this
            horizon, shortened to fit the history when needed.
        n_jobs: Worker processes / threads.
    """
    if model == "seasonal_naive":
        return MODELS[model]()
    if model == "ensemble":
        return MODELS[model](include_prophet=n_series <= PROPHET_MAX_SERIES, backtest_h=horizon, n_jobs=n_jobs)
    return MODELS[model](n_jobs=n_jobs)


def forecast_file(
    input_path: Path,
    output_path: Path,
    horizon: int,
    freq: str = "D",
    level: int = 95,
    model: str = "ensemble",
) -> pd.DataFrame:
    """Forecast every series in a file and write the forecast.

    Args:
        input_path: CSV or Parquet file with columns ``unique_id, ds, y``.
        output_path: CSV or Parquet file to write (folders are created).
        horizon: Steps to forecast after each series' last timestamp.
        freq: ``"D"`` or ``"h"``.
        level: Interval confidence in percent.
        model: One of ``seasonal_naive, ets, arima, theta, mstl, damped_ets, prophet, gbm, ensemble``. The
            ensemble includes Prophet when the file has at most :data:`PROPHET_MAX_SERIES` series, and
            backtests on ``horizon`` (see :func:`build_forecaster`).

    Returns:
        The forecast frame ``(unique_id, ds, yhat, yhat_lower, yhat_upper)``.

    Raises:
        ForecastInputError: On a bad file, model name or argument; the message says what to do.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    out_suffix = _check_extension(output_path, "output")
    key = model.lower().replace("-", "_")
    if key not in MODELS:
        raise ForecastInputError(f"Unknown model {model!r}; choose one of {', '.join(MODELS)}.")
    df = read_series(input_path)
    n_series = df["unique_id"].nunique() if "unique_id" in df.columns else 0
    forecaster = build_forecaster(key, n_series, horizon, get_settings().threads)
    forecast = forecaster.fit(df, freq).predict(horizon, level)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if out_suffix == ".csv":
        forecast.to_csv(output_path, index=False)
    else:
        forecast.to_parquet(output_path, index=False)
    return forecast


def _run(args: argparse.Namespace) -> int:
    try:
        forecast = forecast_file(args.input, args.output, args.horizon, args.freq, args.level, args.model)
    except ForecastInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n_series = forecast["unique_id"].nunique()
    print(f"wrote {len(forecast):,} rows ({n_series} series x {args.horizon} steps, {args.model}) to {args.output}")
    return 0


def add_forecast_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``forecast`` sub-command; its ``func`` returns an exit code (2 on bad input)."""
    p = subparsers.add_parser(
        "forecast",
        help="forecast a CSV/Parquet file of series (unique_id, ds, y)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--input", type=Path, required=True, help="CSV or Parquet with columns unique_id, ds, y")
    p.add_argument("--horizon", type=int, required=True, help="steps to forecast")
    p.add_argument("--freq", default="D", help="D (daily, default) or h (hourly)")
    p.add_argument("--level", type=int, default=95, help="interval confidence in percent (default 95)")
    p.add_argument("--output", type=Path, required=True, help="CSV or Parquet file to write")
    p.add_argument("--model", default="ensemble", help=f"one of {', '.join(MODELS)} (default ensemble)")
    p.set_defaults(func=_run)
    return p
