"""UTC hours to a workspace's local wall clock and back, daylight saving included.

The models forecast on the local wall clock, where people's days repeat (10:00 is 10:00 before and after a
daylight-saving change; on the UTC clock it moves by an hour twice a year, and a weekly lag would put the
week after the change's peak an hour off). The wall clock is a regular hourly grid:

* the hour skipped when daylight saving starts (e.g. 02:00) has no UTC hour: it gets the mean of its
  neighbours while modelling, and is marked missing so it is never reported nor the peak;
* the hour repeated when it ends (e.g. 01:00 twice) gets the mean of its two UTC hours (an hour's load);
  both UTC hours receive its forecast.
"""
from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd


def wall_hours(zone: str, utc_hours: np.ndarray) -> np.ndarray:
    """Local wall-clock hour (naive datetime64[h], floored) of each UTC hour (naive datetime64)."""
    idx = pd.DatetimeIndex(np.asarray(utc_hours, dtype="datetime64[ns]")).tz_localize("UTC")
    local = idx.tz_convert(ZoneInfo(zone)).tz_localize(None).floor("h")
    return local.to_numpy().astype("datetime64[h]")


def to_local(frame: pd.DataFrame, zones: dict, value_cols: list[str]) -> pd.DataFrame:
    """A long frame of UTC hours ``(unique_id, ds, *value_cols)`` on each series' wall clock.

    ``zones`` maps ``unique_id`` to an IANA zone (missing ids: UTC). Rows must be regular hourly per series
    (zero-filled). Returns the same columns with ``ds`` the wall-clock hour, regular, one row per hour.
    """
    out = []
    z = frame["unique_id"].map(zones).fillna("UTC")
    for zone, part in frame.groupby(z.to_numpy(), sort=True):
        if zone == "UTC":
            out.append(part[["unique_id", "ds", *value_cols]])
            continue
        utc = part["ds"].to_numpy().astype("datetime64[h]")
        uniq, inv = np.unique(utc, return_inverse=True)
        wall = wall_hours(zone, uniq)[inv]
        local = part[["unique_id", *value_cols]].assign(ds=wall.astype("datetime64[ns]"))
        local = local.groupby(["unique_id", "ds"], sort=True)[value_cols].mean().reset_index()
        # the skipped hour: a regular grid per series, gaps filled with the neighbours' mean
        spans = local.groupby("unique_id")["ds"].agg(["min", "max"])
        grids = [pd.DataFrame({"unique_id": uid, "ds": pd.date_range(r["min"], r["max"], freq="h")})
                 for uid, r in spans.iterrows()]
        full = pd.concat(grids, ignore_index=True).merge(local, on=["unique_id", "ds"], how="left")
        if full[value_cols].isna().any().any():
            filled = full.groupby("unique_id")[value_cols].transform(lambda s: s.interpolate(limit_direction="both"))
            full[value_cols] = filled.fillna(0.0)
        out.append(full[["unique_id", "ds", *value_cols]])
    if not out:
        return frame.iloc[:0][["unique_id", "ds", *value_cols]]
    return pd.concat(out, ignore_index=True).sort_values(["unique_id", "ds"]).reset_index(drop=True)


def utc_steps(zone: str, wall_end: np.datetime64, utc_hours: np.ndarray) -> np.ndarray:
    """Step on the wall clock (1 = the wall hour after ``wall_end``) of each UTC hour."""
    return (wall_hours(zone, utc_hours) - np.datetime64(wall_end, "h")).astype("int64")


def missing_steps(zone: str, wall_end: np.datetime64, h: int) -> np.ndarray:
    """(h,) True for wall-clock steps after ``wall_end`` that do not exist in ``zone`` (skipped hours)."""
    if zone == "UTC" or zone.startswith("Etc/"):
        return np.zeros(h, dtype=bool)
    walls = pd.DatetimeIndex((np.datetime64(wall_end, "h") + np.arange(1, h + 1).astype("timedelta64[h]"))
                             .astype("datetime64[ns]"))
    localized = walls.tz_localize(ZoneInfo(zone), nonexistent="NaT", ambiguous="NaT")
    gone = np.asarray(localized.isna())
    if gone.any():  # ambiguous (repeated) hours are NaT too: they exist
        shifted = walls.tz_localize(ZoneInfo(zone), nonexistent="NaT", ambiguous=np.ones(h, dtype=bool))
        gone &= np.asarray(shifted.isna())
    return gone
