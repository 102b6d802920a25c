"""The feature gate: the declared feature sets (``pipelines.features.sets``) as of a date.

``validate_features`` checks a non-empty frame, entity keys and declared columns present with their
declared dtypes, unique non-null entity keys, null rates, value ranges (``feature_bounds``) and
orderings between columns (recency <= tenure, ...).
"""
from __future__ import annotations

import time as timer
from datetime import date
from functools import partial

import pandas as pd

from pipelines.features.sets import FEATURE_SETS, WEEKLY_SEQUENCE_WEEKS, FeatureSet
from pipelines.quality import QualityReport, _meta, _run, gxe, register_suite

MAX_NULL_RATE = 0.0  # per declared feature column
ENTITY_KEYS = {"workspace": ["workspace_id"], "user": ["workspace_id", "user_id"],
               "agent": ["workspace_id", "agent_id"]}

_FEATURE_DTYPES = {"float": "float64", "int": "int64", "bool": "bool", "str": "object"}


def entity_keys(fs: FeatureSet) -> list[str]:
    """A feature set's row key: its entity's keys, plus ``day`` for sets with one row per entity and day."""
    return [*ENTITY_KEYS[fs.entity], *(["day"] if fs.grain == "day" else [])]

# Feature ranges: a numeric column not listed here is >= 0, unless it is unbounded.
_UNIT = (0, 1)
_FEATURE_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "error_rate_28": _UNIT,
    "error_rate_t": _UNIT,
    **{f"error_rate_roll_{w}_{stat}": _UNIT for w in (7, 28) for stat in ("mean", "std", "max")},
    "error_rate_trend_7": (-1, 1),
    "zero_share_28": _UNIT,
    "seasonal_strength_7": _UNIT,
    "trend_strength": _UNIT,
    "frequency_90": _UNIT,
    "share_of_ws_credits_28": _UNIT,
    "dow_t": (0, 6),
    "history_days": (1, None),
    "tenure_days": (1, None),
    "active_days_7": (0, 7),
    "active_days_28": (0, 28),
    "active_days_prev_28": (0, 28),
    "active_days_90": (0, 90),
    **{f"weekly_active_w{i}": (0, 7) for i in range(WEEKLY_SEQUENCE_WEEKS)},
    "engagement_drop_28": (-28, 28),
    "active_days_365": (0, 365),
    "p_alive": _UNIT,
    "gap_mean_days": (1, 365),
    "usual_gap_days": (1, 365),
    "ws_usual_gap_days": (1, 365),
    "longest_gap_days": (0, 364),
    "time_zone_score": (-1, 1),
    "utc_offset_hours": (-12, 14),
    "zero_hour_share_28": _UNIT,
    "peak_hour_utc_28": (0, 23),
    "peak_hour_local_28": (0, 23),
    # agent_daily v2 (models.error_rates.features)
    **dict.fromkeys(("baseline_rate", "prior_rate", "rate_3", "rate_7", "user_fail_share_3", "ws_fail_share_1",
                     "ws_fail_share_3", "ws_other_agents_elevated", "platform_elevated_1", "platform_elevated_3"), _UNIT),
    "days_since_call": (0, 365),
    "age_days": (0, 365),
    "rate_trend_per_day": (-1, 1),
}
_UNBOUNDED = {"stl_trend_t", "stl_trend_slope_28", "activity_slope_8w", "error_rate_zscore_t",
              # agent_daily v2: log-odds differences, z-scores and slopes
              "baseline_vs_prior", "excess_1", "excess_3", "excess_7", "z_1", "z_2", "z_3", "z_7", "z_1_prev",
              "elevated_both", "trend_3", "accel_3", "slope_7", "calls_trend", "ws_fail_excess", "ws_fail_excess_1",
              "ws_fail_trend"}
# Column pairs (a, b) with b <= a on every row.
_FEATURE_ORDER = {
    "workspace_daily": [("active_users_7", "active_users_t"), ("active_users_28", "active_users_7"),
                        ("users_ever", "active_users_28")],
    "user_behaviour": [("tenure_days", "recency_days"), ("active_days_28", "active_days_7"),
                       ("active_days_90", "active_days_28"), ("active_days_365", "active_days_90")],
    "agent_daily": [],
    "workspace_hourly": [("calls_hour_max_28", "calls_hour_mean_28"), ("credits_hour_max_28", "credits_hour_mean_28")],
    "workspace_growth": [("wau", "dau"), ("mau", "wau"), ("users_ever", "mau"), ("dau", "new_users"),
                         ("dau", "returning_users"), ("dau", "reactivated_users")],
}


def feature_bounds(fs: FeatureSet) -> dict[str, tuple[float | None, float | None]]:
    """The ``(min, max)`` range checked for each bounded column of a feature set (``None``: open end)."""
    return {f.name: _FEATURE_BOUNDS.get(f.name, (0, None))
            for f in fs.features if f.dtype not in ("bool", "str") and f.name not in _UNBOUNDED}


def _feature_expectations(fs: FeatureSet) -> list[gxe.Expectation]:
    m, keys = partial(_meta, fs.name), entity_keys(fs)
    unique = (gxe.ExpectColumnValuesToBeUnique(column=keys[0], meta=m("unique_key"),
                                               description=f"one row per {keys[0]}")
              if len(keys) == 1 else
              gxe.ExpectCompoundColumnsToBeUnique(column_list=keys, meta=m("unique_key"),
                                                  description=f"one row per ({', '.join(keys)})"))
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1, meta=m("not_empty"), description=f"at least one {fs.entity}"),
        gxe.ExpectTableColumnsToMatchSet(column_set=[*keys, *fs.columns], exact_match=False, meta=m("columns_present"),
                                         description=f"entity keys and the {len(fs.columns)} declared columns"
                                                     " are present"),
        *[gxe.ExpectColumnTypeToBe(column=f.name, type_=_FEATURE_DTYPES[f.dtype], meta=m("type"),
                                   description=f"{f.name} has dtype {_FEATURE_DTYPES[f.dtype]}") for f in fs.features],
        *[gxe.ExpectColumnValuesToNotBeNull(column=k, meta=m("key_not_null"), description=f"{k} is never null")
          for k in keys],
        unique,
        *[gxe.ExpectColumnValuesToNotBeNull(column=c, mostly=1 - MAX_NULL_RATE, meta=m("null_rate"),
                                            description=f"{c} has at most {MAX_NULL_RATE:.0%} nulls")
          for c in fs.columns],
        *[gxe.ExpectColumnValuesToBeBetween(column=c, min_value=lo, max_value=hi, meta=m("range"),
                                            description=f"{lo} <= {c}" + ("" if hi is None else f" <= {hi}"))
          for c, (lo, hi) in feature_bounds(fs).items()],
        *[gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=a, column_B=b, or_equal=True, meta=m("column_order"),
                                                      description=f"{b} <= {a}")
          for a, b in _FEATURE_ORDER[fs.name]],
    ]


for _name, _fs in FEATURE_SETS.items():
    register_suite(_name, partial(_feature_expectations, _fs))


def validate_features(frames: dict[str, pd.DataFrame], as_of: date, may_be_empty: frozenset[str] = frozenset()
                      ) -> QualityReport:
    """Validate feature-set frames as of a date.

    Args:
        frames: Feature set name (``workspace_daily``, ``user_behaviour``, ``agent_daily``) → its frame, as
            the ``build_*_features`` functions return it (entity keys plus the declared columns). Sets not
            given are not checked.
        as_of: The as-of date of the frames.
        may_be_empty: Sets allowed to have no rows (e.g. ``agent_daily`` on a platform without agents):
            their emptiness is a note, not a failure, and the kinds that need them are skipped.

    Returns:
        The report; ``enforce`` it to stop the run on failure.

    Raises:
        ValueError: A key is not a declared feature set.
    """
    unknown = sorted(set(frames) - set(FEATURE_SETS))
    if unknown:
        raise ValueError(f"Unknown feature sets {unknown}: keys must be among {sorted(FEATURE_SETS)}.")
    started = timer.perf_counter()
    results = []
    for name, frame in frames.items():
        keys = [k for k in entity_keys(FEATURE_SETS[name]) if k in frame.columns]
        checked = _run(name, frame, keys)
        if frame.empty:  # one clear failure instead of dtype noise from an empty frame
            for r in checked:
                if r["name"] == "not_empty" and name in may_be_empty:
                    r.update(success=True, skipped=True,
                             note=f"{name} has no rows as of {as_of}: the kinds that need it are skipped")
                elif r["name"] == "not_empty":
                    r["note"] = f"{name} has no rows as of {as_of}: nothing to train on or score"
                elif r["name"] != "columns_present" and not r["skipped"]:
                    r.update(success=True, skipped=True, note="no rows")
        results += checked
    return QualityReport(suite="features", as_of=as_of, passed=all(r["success"] for r in results), results=results,
                         rows={name: len(frame) for name, frame in frames.items()},
                         elapsed_s=timer.perf_counter() - started)
