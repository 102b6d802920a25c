"""A workspace's time zone, inferred from its daily rhythm when the data does not carry one.

People sleep at night: activity drops in the small hours of *local* time, rises in the morning and eases
off in the evening. For each candidate zone (a short list of common IANA zones, with their daylight-saving
rules, plus every whole-hour fixed offset), the UTC hours of the history are converted to local hours with
that zone's rules, week by week, and each week's local-hour profile (share of the week's calls in each
local hour) is correlated with a generic human day (:data:`HUMAN_DAY`). The zone's score is the mean
weekly correlation. A zone whose daylight-saving rules match the data keeps every week aligned; a wrong
rule misaligns the weeks on the other side of a change by an hour and scores lower, so the history itself
says whether (and which) daylight saving applies.

Choice: the best-scoring candidate, except that a candidate listed earlier (a more common zone, see
:data:`CANDIDATES`) within ``margin`` of the best score wins the tie: when the history spans no
daylight-saving change, ``America/New_York`` and ``America/Bogota`` score the same and the commoner one
is taken. Hourly data cannot resolve half-hour zones: India (UTC+05:30) is reported as ``Asia/Kolkata``
when it scores best, with local hours floored (the 09:30-10:30 hour is hour 9).

No rhythm, no zone: a workspace with less than a week of history, too few calls, or a profile unlike a
human day (best correlation below ``min_score``, e.g. a night-only batch job) keeps ``UTC``, and the
``source`` column says why. Its peaks are then reported on the UTC clock (local = UTC).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

# A generic human day by local hour (relative activity): quiet nights, a morning rise, a working-day
# plateau and an evening tail. Only its shape matters (it is correlated, not fitted).
HUMAN_DAY = np.array([0.25, 0.15, 0.10, 0.08, 0.08, 0.12, 0.30, 0.60, 0.90, 1.00, 1.00, 1.00,
                      0.95, 1.00, 1.00, 0.95, 0.90, 0.80, 0.70, 0.65, 0.60, 0.55, 0.45, 0.35])

# Common zones first (within a standard offset, the zone taken on a tie), then every whole-hour fixed
# offset. ``Etc/GMT+8`` is UTC-08:00 (POSIX signs are inverted).
NAMED_ZONES = (
    "America/New_York", "America/Los_Angeles", "America/Chicago", "America/Denver", "Europe/London",
    "Europe/Paris", "Asia/Kolkata", "Asia/Tokyo", "Asia/Shanghai", "Asia/Singapore", "Australia/Sydney",
    "America/Sao_Paulo", "Europe/Athens", "Asia/Dubai", "America/Phoenix", "America/Mexico_City",
    "America/Bogota", "America/Halifax", "America/Santiago", "America/Argentina/Buenos_Aires",
    "Pacific/Honolulu", "America/Anchorage", "Atlantic/Azores", "Africa/Lagos", "Africa/Johannesburg",
    "Europe/Istanbul", "Asia/Karachi", "Asia/Dhaka", "Asia/Bangkok", "Australia/Brisbane",
    "Pacific/Auckland",
)
FIXED_ZONES = tuple("UTC" if o == 0 else f"Etc/GMT{-o:+d}" for o in range(-11, 15))
CANDIDATES = NAMED_ZONES + FIXED_ZONES
DEFAULT_ZONE = "UTC"


@dataclass(frozen=True)
class ZoneChoice:
    time_zone: str
    score: float  # mean weekly correlation with HUMAN_DAY (0 when not inferred)
    source: str  # "inferred" | "default: <reason>" | "declared"


@lru_cache(maxsize=256)
def _local_hours(zone: str, start_ns: int, n: int) -> np.ndarray:
    """Local hour of day (0-23, floored) of ``n`` consecutive UTC hours from ``start_ns``."""
    utc = pd.date_range(pd.Timestamp(start_ns, tz="UTC"), periods=n, freq="h")
    return np.asarray(utc.tz_convert(ZoneInfo(zone)).hour, dtype=np.int64)


def utc_offset_hours(zone: str, at: pd.Timestamp) -> float:
    """The zone's UTC offset in hours at UTC time ``at`` (naive: read as UTC)."""
    ts = pd.Timestamp(at)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
    off = ts.tz_convert(ZoneInfo(zone)).utcoffset()
    return off.total_seconds() / 3600.0


def score_zones(hourly: np.ndarray, start: pd.Timestamp, zones: tuple[str, ...] = CANDIDATES) -> np.ndarray:
    """Mean weekly correlation with :data:`HUMAN_DAY` of each series under each zone.

    Args:
        hourly: (n_series, n_hours) calls per UTC hour, the same consecutive hours for every series (zeros
            where there were none), starting at ``start`` (naive UTC, on the hour).
        start: The first hour.
        zones: Candidate zone names.

    Returns:
        (n_series, n_zones) scores; NaN where a series had no calls in any full week.
    """
    n, T = hourly.shape
    weeks = T // 168
    if weeks == 0:
        return np.full((n, len(zones)), np.nan)
    x = hourly[:, T - weeks * 168:]  # whole weeks ending at the last hour
    start_ns = (pd.Timestamp(start) + pd.Timedelta(hours=T - weeks * 168)).value
    tmpl = (HUMAN_DAY - HUMAN_DAY.mean()) / HUMAN_DAY.std()
    out = np.full((n, len(zones)), np.nan)
    xw = x.reshape(n, weeks, 168)
    for j, zone in enumerate(zones):
        hours = _local_hours(zone, start_ns, weeks * 168).reshape(weeks, 168)
        prof = np.zeros((n, weeks, 24))
        for w in range(weeks):  # sum each week's calls by local hour
            onehot = np.zeros((168, 24))
            onehot[np.arange(168), hours[w]] = 1.0
            prof[:, w, :] = xw[:, w, :] @ onehot
        mu = prof.mean(axis=2, keepdims=True)
        sd = prof.std(axis=2, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = ((prof - mu) / sd * tmpl).mean(axis=2)  # (n, weeks); NaN for empty weeks
        corr[~np.isfinite(corr)] = np.nan
        with np.errstate(invalid="ignore"):
            out[:, j] = np.nanmean(np.where(np.isnan(corr), np.nan, corr), axis=1) if weeks else np.nan
    return out


def infer_time_zones(hourly: np.ndarray, start: pd.Timestamp, min_score: float = 0.5, margin: float = 1e-3,
                     min_calls: float = 50.0, zones: tuple[str, ...] = CANDIDATES) -> list[ZoneChoice]:
    """Each series' time zone from its daily rhythm (module docstring).

    Args:
        hourly: (n_series, n_hours) calls per UTC hour from ``start`` (see :func:`score_zones`); use
            several months to span a daylight-saving change.
        start: The first hour (naive UTC).
        min_score: Below this best correlation the rhythm is not a human day: ``UTC`` is kept.
        margin: Score slack within which an earlier (commoner) candidate wins (exact ties: the history spans
            no daylight-saving change, so DST and fixed zones of that offset score alike).
        min_calls: Fewer calls in the whole window: ``UTC`` is kept.
        zones: Candidates, commonest first.

    Returns:
        One :class:`ZoneChoice` per series.
    """
    hourly = np.nan_to_num(np.asarray(hourly, dtype=float))
    scores = score_zones(hourly, start, zones)
    totals = hourly.sum(axis=1)
    out = []
    for i in range(hourly.shape[0]):
        s = scores[i]
        if hourly.shape[1] < 168:
            out.append(ZoneChoice(DEFAULT_ZONE, 0.0, "default: less than a week of history"))
            continue
        if totals[i] < min_calls or not np.isfinite(s).any():
            out.append(ZoneChoice(DEFAULT_ZONE, 0.0, f"default: fewer than {min_calls:g} calls to read a rhythm from"))
            continue
        best = float(np.nanmax(s))
        if best < min_score:
            out.append(ZoneChoice(DEFAULT_ZONE, best, "default: no human daily rhythm (e.g. batch jobs)"))
            continue
        j = int(np.flatnonzero(s >= best - margin)[0])
        out.append(ZoneChoice(zones[j], float(s[j]), "inferred"))
    return out
