"""Feature sets from a user-given events frame, with the nightly run's own code (no database needed).

The nightly run stages events (``pipelines.ingest.extract``), aggregates them per day and hour into the
store (``pipelines.features.store`` / ``hourly``) and builds each declared set (``pipelines.features.sets``)
with ``pipelines.features.builders``. Here the same steps run in memory: the frame is validated with the
loader's row rules (``pipelines.ingest.validate``), cast to the staged schema, aggregated with the same
functions, cast to the store's schemas, and handed to the same builders.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pyarrow as pa

from core.contracts import EVENT_COLUMNS, REQUIRED_EVENT_COLUMNS, event_arrow_schema
from pipelines.features.builders import DailyAggregates, build_user_features, daily_aggregates
from pipelines.features.hourly import HOURLY_DAYS, HOURLY_SCHEMA, build_hourly_features, hourly_aggregates
from pipelines.features.sets import FEATURE_SETS, GROWTH_MAU_WINDOW_DAYS, USER_BEHAVIOUR, WORKSPACE_HOURLY
from pipelines.features.store import DAILY_TABLES, build_daily_feature_set, daily_table
from pipelines.ingest.validate import OPTIONAL_COLUMNS, validate_events

FEATURE_SET_NAMES: tuple[str, ...] = tuple(FEATURE_SETS)
_SHOWN_REJECTS = 5


def _check_feature_set(feature_set: str) -> str:
    name = feature_set.split("/", 1)[0] if isinstance(feature_set, str) else feature_set
    if name not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {feature_set!r}; valid feature sets: {list(FEATURE_SETS)}")
    if isinstance(feature_set, str) and "/" in feature_set and feature_set != FEATURE_SETS[name].key:
        raise ValueError(f"feature set {feature_set!r} is not declared; valid: {[fs.key for fs in FEATURE_SETS.values()]}")
    return name


def staged_events(data: pd.DataFrame, drop_invalid: bool = False, now: datetime | None = None) -> pd.DataFrame:
    """Validate a frame of usage events (the source contract) and return it as the nightly run stages it.

    Columns: ``event_time`` (UTC; naive = UTC), ``workspace_id``, ``user_id``, ``agent_id``, ``feature``,
    ``credits``, ``status``, optional ``count`` and ``event_id``; other columns are ignored.

    Raises:
        ValueError: Not a DataFrame, missing columns (listed with the valid ones), or invalid rows (the first
            few with their reasons) unless ``drop_invalid``.
    """
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data must be a pandas DataFrame of usage events, got {type(data).__name__}")
    missing = [c for c in REQUIRED_EVENT_COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"events frame lacks column(s) {missing}; required columns: {list(REQUIRED_EVENT_COLUMNS)}"
                         f" (optional: {list(OPTIONAL_COLUMNS)}); got {list(data.columns)}")
    now = now or datetime.now(timezone.utc)
    valid, rejects = validate_events(data[[c for c in data.columns if c in (*REQUIRED_EVENT_COLUMNS, *OPTIONAL_COLUMNS)]],
                                     now, first_line=0)
    if len(rejects) and not drop_invalid:
        shown = "; ".join(f"row {int(r.line)}: {r.reason}" for r in rejects.head(_SHOWN_REJECTS).itertuples())
        raise ValueError(f"{len(rejects)} of {len(data)} event rows are invalid ({shown}); fix them or pass "
                         "drop_invalid=True to leave them out")
    schema = event_arrow_schema()
    return pa.Table.from_pandas(valid[list(EVENT_COLUMNS)], schema=schema, preserve_index=False).to_pandas()


def _daily(events: pd.DataFrame) -> DailyAggregates:
    """Daily aggregates as the store holds them (its declared schemas)."""
    tables = daily_aggregates(events).tables()
    return DailyAggregates(**{n: daily_table(n, tables[n]).to_pandas() for n in DAILY_TABLES})


def _hourly(events: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Hourly aggregates of the :data:`HOURLY_DAYS` to ``as_of``, as ``load_hourly_aggregates`` reads them."""
    table = hourly_aggregates(events)
    table = pa.Table.from_pandas(table[HOURLY_SCHEMA.names], schema=HOURLY_SCHEMA, preserve_index=False).to_pandas()
    lo = pd.Timestamp(as_of - timedelta(days=HOURLY_DAYS))
    hi = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    return table[(table["hour"] >= lo) & (table["hour"] < hi)].reset_index(drop=True)


def extract_features(data: pd.DataFrame, feature_set: str, as_of: date | None = None, *,
                     holiday_country: str = "US", growth_mau_window_days: int = GROWTH_MAU_WINDOW_DAYS,
                     declared_time_zones: dict[str, str] | None = None, drop_invalid: bool = False) -> pd.DataFrame:
    """A declared feature set as of ``as_of`` (default: the last event day, UTC) from an events frame.

    Args:
        data: Usage events in the source contract (see :func:`staged_events`).
        feature_set: ``workspace_daily``, ``user_behaviour``, ``agent_daily``, ``workspace_growth`` or
            ``workspace_hourly`` (optionally with its version, ``user_behaviour/v2``).
        as_of: Features use events up to the end of this day only.
        holiday_country: Holiday calendar of ``workspace_daily`` (the nightly run's ``PAE_HOLIDAY_COUNTRY``).
        growth_mau_window_days: MAU window of ``workspace_growth`` (``PAE_GROWTH_MAU_WINDOW_DAYS``).
        declared_time_zones: Workspace id -> IANA zone that wins over the inferred one (``workspace_hourly``).
        drop_invalid: Leave invalid rows out instead of raising.

    Returns:
        One row per entity (``workspace_id`` and ``user_id``/``agent_id`` keys, then the declared columns),
        or per workspace and ``day`` for ``workspace_growth``: what the nightly run writes to the offline store.

    Raises:
        ValueError: Unknown feature set (valid ones listed), missing columns, invalid rows, no events.
    """
    name = _check_feature_set(feature_set)
    events = staged_events(data, drop_invalid=drop_invalid)
    if events.empty:
        raise ValueError("no valid events in the frame: nothing to build features from")
    if as_of is None:
        as_of = events["event_time"].max().date()
    as_of = pd.Timestamp(as_of).date()
    if name == WORKSPACE_HOURLY.name:
        return build_hourly_features(_hourly(events, as_of), as_of, declared_time_zones)
    return build_daily_feature_set(name, _daily(events), as_of, holiday_country, growth_mau_window_days)


def churn_training_data(data: pd.DataFrame, as_of_dates: list[date], window_days: int = 30,
                        lookback_days: int = 365, drop_invalid: bool = False) -> pd.DataFrame:
    """Labelled ``user_behaviour`` snapshots for churn model training, as the nightly churn kind makes them.

    One row per user seen within ``lookback_days`` of each as-of date: ``workspace_id``, ``user_id``,
    ``as_of``, the features and ``churned`` (1 = no activity in ``(as_of, as_of + window_days]``).

    Raises:
        ValueError: A date whose label window is not complete in the data (it would label users as churned
            for lack of data), or the errors of :func:`staged_events`.
    """
    from pipelines.churn.train import active_days, churn_labels

    if not as_of_dates:
        raise ValueError("give at least one as-of date")
    events = staged_events(data, drop_invalid=drop_invalid)
    if events.empty:
        raise ValueError("no valid events in the frame: nothing to build features from")
    observed_until = events["event_time"].max().date()
    late = [d for d in as_of_dates if pd.Timestamp(d).date() + timedelta(days=window_days) > observed_until]
    if late:
        raise ValueError(f"as-of date(s) {[str(d) for d in late]} have no complete {window_days}-day label window "
                         f"before the last event day {observed_until}")
    agg = _daily(events)
    active = active_days(agg)
    frames = []
    for d in sorted(pd.Timestamp(x).date() for x in as_of_dates):
        snap = build_user_features(agg, d)
        snap = snap[snap["recency_days"] < lookback_days].reset_index(drop=True)
        frames.append(snap.assign(as_of=pd.Timestamp(d), churned=churn_labels(snap, active, d, window_days)))
    frame = pd.concat(frames, ignore_index=True)
    return frame[["workspace_id", "user_id", "as_of", *USER_BEHAVIOUR.columns, "churned"]]
