"""Feature store I/O: daily aggregate partitions, the Parquet offline store, ``analytics.ml_features``.

Layout under ``store_dir``:
- ``daily/<table>/month=YYYY-MM/part-0.parquet``: daily aggregates of one month of staged days (rebuilt
  when one of its staged partitions is newer), tables as in ``pipelines.features.DailyAggregates``;
- ``<feature_set>/v<version>/as_of=YYYY-MM-DD/part-0.parquet``: a feature set as of a date (offline store,
  for training: one file per snapshot). Workspace shards build it in parts
  (``_shards/<feature_set>/v<version>/as_of=.../part-<k>-of-<n>.parquet``), merged into the one file; the next
  refresh removes them.
The online copy, ``analytics.ml_features``, keeps the latest as-of row per entity, set and version.
``store_dir`` (and ``staging_dir``) is a local folder or an object-store location (``core.storage``, e.g.
``s3://bucket/prefix/offline_store``), as the ``storage_uri`` setting says.
"""
from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.contracts import TOTAL
from core.ids import entity_uuid
from core.shards import shard_rows
from core.storage import (
    StoragePath,
    concat_parquet,
    file_mtimes,
    is_remote,
    modified_ns,
    newer,
    read_parquet,
    remove_tree,
    write_parquet,
)
from pipelines.features.builders import (
    AGENT_PANEL_DAYS,
    P_ALIVE_INPUTS,
    DailyAggregates,
    build_agent_features,
    build_growth_features,
    build_user_features,
    build_workspace_features,
    agent_first_seen,
    daily_aggregates,
    fit_p_alive,
    refit_p_alive,
)
from pipelines.features.sets import (
    AGENT_DAILY,
    FEATURE_SETS,
    USER_BEHAVIOUR,
    WORKSPACE_DAILY,
    WORKSPACE_GROWTH,
    WORKSPACE_HOURLY,
    FeatureSet,
)
from pipelines.ingest.extract import EVENT_SCHEMA, events_dir, read_staged

log = logging.getLogger(__name__)

# The last table's file marks a month as built: a table added at the end makes every month of an older store
# stale once, so the next features step rebuilds them with it.
DAILY_TABLES = ("workspace_feature", "workspace_total", "user_feature", "agent", "agent_feature", "workspace_errors")
_DAY, _STR, _INT, _FLOAT = pa.timestamp("us"), pa.string(), pa.int64(), pa.float64()
# Every partition is written with these schemas, whatever it holds (a month without agents still has a typed
# agent_id column), and read back cast to them, so files written by older versions (null-typed columns)
# concatenate with new ones.
DAILY_SCHEMAS: dict[str, pa.Schema] = {
    "workspace_feature": pa.schema([("workspace_id", _STR), ("day", _DAY), ("feature", _STR), ("credits", _FLOAT),
                                    ("calls", _INT), ("errors", _INT), ("active_users", _INT)]),
    "workspace_total": pa.schema([("workspace_id", _STR), ("day", _DAY), ("credits", _FLOAT), ("calls", _INT),
                                  ("errors", _INT), ("active_users", _INT)]),
    "user_feature": pa.schema([("workspace_id", _STR), ("user_id", _STR), ("day", _DAY), ("feature", _STR),
                               ("credits", _FLOAT), ("calls", _INT), ("errors", _INT)]),
    "agent": pa.schema([("workspace_id", _STR), ("agent_id", _STR), ("day", _DAY), ("calls", _INT),
                        ("errors", _INT), ("credits", _FLOAT)]),
    "agent_feature": pa.schema([("workspace_id", _STR), ("agent_id", _STR), ("day", _DAY), ("feature", _STR),
                                ("calls", _INT), ("errors", _INT), ("credits", _FLOAT), ("users", _INT),
                                ("error_users", _INT)]),
    "workspace_errors": pa.schema([("workspace_id", _STR), ("day", _DAY), ("active_users", _INT),
                                   ("error_users", _INT)]),
}


def daily_table(name: str, frame: pd.DataFrame) -> pa.Table:
    """A daily-aggregate frame as an Arrow table with its declared schema."""
    schema = DAILY_SCHEMAS[name]
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


def read_daily(path: StoragePath, name: str, columns: tuple[str, ...] | None = None) -> pa.Table:
    """One daily-aggregate partition (``columns``: only these), cast to the declared schema (older files may hold
    null-typed columns)."""
    schema = DAILY_SCHEMAS[name]
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns])
    return read_parquet(path, columns=schema.names).cast(schema)


def _atomic_write(table: pa.Table, target: StoragePath) -> None:
    write_parquet(table, target)


def staged_mtimes(staging_dir: StoragePath) -> dict[date, int]:
    """Each staged day with its partition's modification time (ns), in one listing."""
    return {date.fromisoformat(p.parent.name[5:]): t
            for p, t in file_mtimes(events_dir(staging_dir), "date=*/part-0.parquet").items()}


def daily_path(store_dir: StoragePath, table: str, month: str) -> StoragePath:
    return store_dir / "daily" / table / f"month={month}" / "part-0.parquet"


def _month(d: date) -> str:
    return d.strftime("%Y-%m")


def stale_months(staging_dir: StoragePath, store_dir: StoragePath) -> dict[str, list[date]]:
    """Months with a staged day newer than the month's aggregates (or none yet), with their staged days."""
    staged = staged_mtimes(staging_dir)
    by_month: dict[str, list[date]] = {}
    for d in sorted(staged):
        by_month.setdefault(_month(d), []).append(d)
    out = {}
    for month, days in by_month.items():
        built = modified_ns(daily_path(store_dir, DAILY_TABLES[-1], month))
        if any(newer(staged[d], built, is_remote(store_dir) or is_remote(staging_dir)) for d in days):
            out[month] = days
    return out


def _daily_keys(name: str) -> list[str]:
    return [c for c in DAILY_SCHEMAS[name].names if c in ("workspace_id", "user_id", "agent_id", "day", "feature")]


def refresh_daily_aggregates(staging_dir: StoragePath, store_dir: StoragePath) -> list[date]:
    """(Re)build the monthly daily-aggregate partitions of stale months; returns the days rebuilt.

    Each staged day is aggregated on its own (staged days are UTC days, and every daily table is keyed by day), so
    memory holds one day of events, not a month."""
    rebuilt: list[date] = []
    for month, days in sorted(stale_months(staging_dir, store_dir).items()):
        per_day: dict[str, list[pa.Table]] = {name: [] for name in DAILY_TABLES}
        for d in days:  # each day's aggregates as Arrow tables at once (compact strings, not Python objects)
            for name, frame in daily_aggregates(read_staged(staging_dir, d).to_pandas()).tables().items():
                per_day[name].append(daily_table(name, frame))
        for name in DAILY_TABLES:  # the last table's file marks the month as built
            table = pa.concat_tables(per_day.pop(name)).sort_by([(k, "ascending") for k in _daily_keys(name)])
            _atomic_write(table, daily_path(store_dir, name, month))
        rebuilt.extend(days)
    return rebuilt


def load_daily_aggregates(store_dir: StoragePath, until: date, since: date | None = None,
                          only: tuple[str, ...] | None = None, shard: tuple[int, int] | None = None,
                          columns: tuple[str, ...] | None = None) -> DailyAggregates:
    """The daily aggregates of days ``since..until`` from the store (``only``: just these tables, the
    others empty; ``shard``: ``(k, n)``, only the workspaces of shard ``k`` of ``n``, filtered file by file;
    ``columns``: only these columns of the ``only`` tables)."""
    lo = pd.Timestamp(since) if since else None
    tables = {}
    for name in DAILY_TABLES:
        files = sorted((store_dir / "daily" / name).glob("month=*/part-0.parquet")) if only is None or name in only else []
        keep = [f for f in files if f.parent.name[6:] <= _month(until) and (since is None or f.parent.name[6:] >= _month(since))]
        if not keep:
            tables[name] = getattr(daily_aggregates(EVENT_SCHEMA.empty_table().to_pandas()), name)
            continue
        parts = [read_daily(f, name, columns) for f in keep] if shard is None else [
            shard_rows(read_daily(f, name, columns), *shard) for f in keep]
        df = pa.concat_tables(parts).to_pandas()
        mask = df["day"] <= pd.Timestamp(until)
        if lo is not None:
            mask &= df["day"] >= lo
        tables[name] = df[mask].reset_index(drop=True)
    return DailyAggregates(**tables)


def offline_path(store_dir: StoragePath, fs: FeatureSet, as_of: date) -> StoragePath:
    return store_dir / fs.name / f"v{fs.version}" / f"as_of={as_of.isoformat()}" / "part-0.parquet"


def shard_part_path(store_dir: StoragePath, fs: FeatureSet, as_of: date, shard: int, n_shards: int) -> StoragePath:
    return (store_dir / "_shards" / fs.name / f"v{fs.version}" / f"as_of={as_of.isoformat()}"
            / f"part-{shard}-of-{n_shards}.parquet")


def write_offline(store_dir: StoragePath, fs: FeatureSet, as_of: date, frame: pd.DataFrame) -> StoragePath:
    path = offline_path(store_dir, fs, as_of)
    _atomic_write(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path


def read_offline(store_dir: StoragePath, fs: FeatureSet, as_of: date) -> pd.DataFrame | None:
    path = offline_path(store_dir, fs, as_of)
    return read_parquet(path).to_pandas() if path.exists() else None


_UPSERT_FEATURES = """
insert into analytics.ml_features (entity_type, entity_id, feature_set, features, computed_at, version, as_of_date)
select entity_type, entity_id, feature_set, features, computed_at, version, as_of_date from stage_features
on conflict (entity_type, entity_id, feature_set, version) do update set
    features = excluded.features, computed_at = excluded.computed_at, as_of_date = excluded.as_of_date
where analytics.ml_features.as_of_date <= excluded.as_of_date
"""


def _entity_column(fs: FeatureSet) -> str:
    return {"workspace": "workspace_id", "user": "user_id", "agent": "agent_id"}[fs.entity]


def publish_online(conn: sa.Connection, fs: FeatureSet, as_of: date, frame: pd.DataFrame) -> int:
    """Upsert the latest features per entity into ``analytics.ml_features`` (never regresses to older dates)."""
    if frame.empty:
        return 0
    col = _entity_column(fs)
    computed_at = datetime.combine(as_of + timedelta(days=1), time())  # data cutoff, not wall clock
    payload = frame[["workspace_id", *([col] if col != "workspace_id" else []), *fs.columns]]
    records = payload.to_dict("records")
    stage = pd.DataFrame(
        {
            "entity_type": fs.entity,
            "entity_id": [str(entity_uuid(fs.entity, r[col])) for r in records],
            "feature_set": fs.name,
            "features": [json.dumps(r, default=float, sort_keys=True) for r in records],
            "computed_at": computed_at.isoformat(),
            "version": fs.version,
            "as_of_date": as_of.isoformat(),
        }
    ).drop_duplicates(["entity_id"], keep="last")
    conn.execute(sa.text(
        "create temp table stage_features (entity_type text, entity_id uuid, feature_set text, features jsonb,"
        " computed_at timestamp, version int, as_of_date date) on commit drop"
    ))
    buf = io.StringIO()
    stage.to_csv(buf, index=False, header=False)
    buf.seek(0)
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.copy_expert("copy stage_features from stdin with (format csv)", buf)
    n = conn.execute(sa.text(_UPSERT_FEATURES)).rowcount
    conn.execute(sa.text("drop table stage_features"))
    return n


def _workspace_clause(workspace_ids: list[str] | None) -> tuple[str, dict]:
    """A ``delete`` restriction to the rows of these workspaces (external ids), or none (``None``: every workspace)."""
    if workspace_ids is None:
        return "", {}
    return " and workspace_id = any(:ws)", {"ws": [entity_uuid("workspace", w) for w in workspace_ids]}


def replace_daily_metrics(conn: sa.Connection, agg: DailyAggregates, days: list[date],
                          workspace_ids: list[str] | None = None) -> int:
    """Swap ``analytics.workspace_daily_metrics`` rows of ``days`` for the freshly aggregated ones (``workspace_ids``:
    only the rows of these workspaces, e.g. one shard's)."""
    if not days:
        return 0
    day_set = pd.to_datetime(pd.Series(days))
    wf = agg.workspace_feature[agg.workspace_feature["day"].isin(day_set)].rename(columns={"feature": "dimension"})
    wt = agg.workspace_total[agg.workspace_total["day"].isin(day_set)].assign(dimension=TOTAL)
    rows = pd.concat([wt, wf], ignore_index=True)
    ids = {w: str(entity_uuid("workspace", w)) for w in rows["workspace_id"].unique()}
    out = pd.DataFrame(
        {
            "workspace_id": rows["workspace_id"].map(ids),
            "metric_date": rows["day"].dt.strftime("%Y-%m-%d"),
            "dimension": rows["dimension"],
            "credits": rows["credits"],
            "calls": rows["calls"].astype("int64"),
            "errors": rows["errors"].astype("int64"),
            "active_users": rows["active_users"].astype("int64"),
        }
    )
    where, params = _workspace_clause(workspace_ids)
    conn.execute(sa.text(f"delete from analytics.workspace_daily_metrics where metric_date = any(:days){where}"),
                 {"days": list(days), **params})
    buf = io.StringIO()
    out.to_csv(buf, index=False, header=False)
    buf.seek(0)
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.copy_expert(
            "copy analytics.workspace_daily_metrics (workspace_id, metric_date, dimension, credits, calls, errors,"
            " active_users) from stdin with (format csv)",
            buf,
        )
    return len(out)


def replace_growth_metrics(conn: sa.Connection, growth: pd.DataFrame, days: list[date], as_of: date,
                           workspace_ids: list[str] | None = None) -> int:
    """Swap ``analytics.workspace_growth_metrics`` rows from the first refreshed day through ``as_of`` for the
    ``workspace_growth`` rows (a late event changes WAU/MAU for a window of days after it, all within that range)."""
    if not days:
        return 0
    since = min(days)
    rows = growth[(growth["day"] >= pd.Timestamp(since)) & (growth["day"] <= pd.Timestamp(as_of))]
    ids = {w: str(entity_uuid("workspace", w)) for w in rows["workspace_id"].unique()}
    out = rows.assign(workspace_id=rows["workspace_id"].map(ids), day=rows["day"].dt.strftime("%Y-%m-%d"))
    where, params = _workspace_clause(workspace_ids)
    conn.execute(sa.text(f"delete from analytics.workspace_growth_metrics where metric_date between :a and :b{where}"),
                 {"a": since, "b": as_of, **params})
    buf = io.StringIO()
    out[["workspace_id", "day", *WORKSPACE_GROWTH.columns]].to_csv(buf, index=False, header=False)
    buf.seek(0)
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.copy_expert(f"copy analytics.workspace_growth_metrics (workspace_id, metric_date,"
                        f" {', '.join(WORKSPACE_GROWTH.columns)}) from stdin with (format csv)", buf)
    return len(out)


def replace_agent_daily_metrics(conn: sa.Connection, agg: DailyAggregates, days: list[date],
                                workspace_ids: list[str] | None = None) -> int:
    """Swap ``analytics.agent_daily_metrics`` rows of ``days`` for the freshly aggregated ones (agents' daily calls,
    failures and credits: the history the error-rate API serves)."""
    if not days:
        return 0
    ad = agg.agent_feature[agg.agent_feature["day"].isin(pd.to_datetime(pd.Series(days)))]
    ad = ad.groupby(["workspace_id", "agent_id", "day"], observed=True)[["calls", "errors", "credits"]].sum().reset_index()
    ws = {w: str(entity_uuid("workspace", w)) for w in ad["workspace_id"].unique()}
    ag = {a: str(entity_uuid("agent", a)) for a in ad["agent_id"].unique()}
    out = pd.DataFrame({"workspace_id": ad["workspace_id"].map(ws), "agent_id": ad["agent_id"].map(ag),
                        "metric_date": ad["day"].dt.strftime("%Y-%m-%d"), "calls": ad["calls"].astype("int64"),
                        "errors": ad["errors"].astype("int64"), "credits": ad["credits"].astype(float)})
    where, params = _workspace_clause(workspace_ids)
    conn.execute(sa.text(f"delete from analytics.agent_daily_metrics where metric_date = any(:days){where}"),
                 {"days": list(days), **params})
    buf = io.StringIO()
    out.to_csv(buf, index=False, header=False)
    buf.seek(0)
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.copy_expert("copy analytics.agent_daily_metrics (workspace_id, agent_id, metric_date, calls, errors, credits)"
                        " from stdin with (format csv)", buf)
    return len(out)


@dataclass
class FeatureSummary:
    as_of: date
    refreshed_days: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    offline_paths: dict[str, str] = field(default_factory=dict)
    shards: int = 1

    def as_dict(self) -> dict:
        return {"as_of": self.as_of.isoformat(), "refreshed_days": self.refreshed_days, "rows": self.rows,
                "offline_paths": self.offline_paths, "shards": self.shards}


def _hourly_features(engine: Engine, store_dir: StoragePath, as_of: date,
                     shard: tuple[int, int] | None = None) -> pd.DataFrame:
    """``workspace_hourly`` as of ``as_of`` from the stored hourly aggregates (``pipelines.features.hourly``; of one
    shard's workspaces with ``shard``); time zones declared with ``pae capacity set --time-zone`` win over inferred
    ones."""
    from pipelines.features.hourly import HOURLY_DAYS, build_hourly_features, load_hourly_aggregates

    table = load_hourly_aggregates(store_dir, as_of, as_of - timedelta(days=HOURLY_DAYS), shard=shard)
    with engine.connect() as conn:
        declared = dict(conn.execute(sa.text(
            "select e.external_id, z.time_zone from analytics.workspace_time_zones z"
            " join analytics.entities e on e.entity_type = 'workspace' and e.entity_id = z.workspace_id")).all())
    return build_hourly_features(table, as_of, declared)


DAILY_FEATURE_SETS: tuple[FeatureSet, ...] = (WORKSPACE_DAILY, USER_BEHAVIOUR, AGENT_DAILY, WORKSPACE_GROWTH)
# Built per workspace shard: each row depends on its own workspace's history only. ``agent_daily`` compares every
# agent with the platform (baselines, platform-wide elevated shares), so it is built once, over all agents, at merge.
SHARDED_FEATURE_SETS: tuple[FeatureSet, ...] = (WORKSPACE_DAILY, USER_BEHAVIOUR, WORKSPACE_GROWTH, WORKSPACE_HOURLY)
PLATFORM_FEATURE_SETS: tuple[FeatureSet, ...] = (AGENT_DAILY,)  # built in merge_feature_shards
BUILT_FEATURE_SETS: tuple[FeatureSet, ...] = (*SHARDED_FEATURE_SETS, *PLATFORM_FEATURE_SETS)


def build_daily_feature_set(name: str, agg: DailyAggregates, as_of: date, holiday_country: str,
                            growth_mau_window_days: int) -> pd.DataFrame:
    """The feature set ``name`` (one of ``DAILY_FEATURE_SETS``) as of ``as_of`` from daily aggregates."""
    if name == WORKSPACE_DAILY.name:
        return build_workspace_features(agg, as_of, holiday_country)
    if name == USER_BEHAVIOUR.name:
        return build_user_features(agg, as_of)
    if name == AGENT_DAILY.name:
        return build_agent_features(agg, as_of)
    if name == WORKSPACE_GROWTH.name:
        return build_growth_features(agg, as_of, growth_mau_window_days)
    raise ValueError(f"feature set {name!r} has no builder here; valid feature sets: {list(FEATURE_SETS)}")


def refresh_aggregates(staging_dir: StoragePath, store_dir: StoragePath, as_of: date) -> dict:
    """Rebuild the stale months of the daily and hourly aggregates; returns the daily days rebuilt up to ``as_of``
    (ISO dates: the days whose database metrics the feature shards replace) and the hourly days rebuilt."""
    from pipelines.features.hourly import refresh_hourly_aggregates

    # the parts of an earlier run (kept so that a retried merge finds them) are not needed any more
    remove_tree(store_dir / "_shards")
    refreshed = [d for d in refresh_daily_aggregates(staging_dir, store_dir) if d <= as_of]
    hourly = refresh_hourly_aggregates(staging_dir, store_dir, as_of)
    return {"refreshed_days": [d.isoformat() for d in refreshed], "hourly_days_refreshed": len(hourly)}


def build_feature_shard(engine: Engine, store_dir: StoragePath, as_of: date, refreshed: list[date], shard: int,
                        n_shards: int, holiday_country: str = "US", growth_mau_window_days: int | None = None
                        ) -> dict[str, int]:
    """The ``SHARDED_FEATURE_SETS`` as of ``as_of`` for the workspaces of shard ``shard`` of ``n_shards`` (their rows
    depend on their own workspace only, so the shards' rows are the whole store's): offline parts
    (``shard_part_path``, merged by ``merge_feature_shards``) and, in one transaction, this shard's database rows:
    daily, agent and growth metrics of the ``refreshed`` days, and the online features. Returns rows per table."""
    if growth_mau_window_days is None:
        from core.settings import get_settings

        growth_mau_window_days = get_settings().growth_mau_window_days
    part = (shard, n_shards)
    agg = load_daily_aggregates(store_dir, as_of, shard=part)
    frames = {fs: build_daily_feature_set(fs.name, agg, as_of, holiday_country, growth_mau_window_days)
              for fs in SHARDED_FEATURE_SETS if fs in DAILY_FEATURE_SETS and fs is not USER_BEHAVIOUR}
    # P(alive) is pooled over every user: the merge refits it and publishes this set online
    frames[USER_BEHAVIOUR] = build_user_features(agg, as_of, with_p_alive_inputs=True)
    frames[WORKSPACE_HOURLY] = _hourly_features(engine, store_dir, as_of, part)
    for fs, frame in frames.items():
        write_parquet(pa.Table.from_pandas(frame, preserve_index=False), shard_part_path(store_dir, fs, as_of, *part))
    # one shard replaces its own workspaces' rows; the only shard replaces every row of those days
    workspaces = None if n_shards == 1 else sorted(set().union(*(t["workspace_id"].unique()
                                                                 for t in agg.tables().values())))
    rows: dict[str, int] = {}
    with engine.begin() as conn:
        rows["workspace_daily_metrics"] = replace_daily_metrics(conn, agg, refreshed, workspaces)
        rows["agent_daily_metrics"] = replace_agent_daily_metrics(conn, agg, refreshed, workspaces)
        rows["workspace_growth_metrics"] = replace_growth_metrics(conn, frames[WORKSPACE_GROWTH], refreshed, as_of,
                                                                  workspaces)
        for fs, frame in frames.items():
            if fs is USER_BEHAVIOUR:
                continue
            latest = frame[frame["day"] == pd.Timestamp(as_of)] if fs.grain == "day" else frame
            rows[f"ml_features:{fs.name}"] = publish_online(conn, fs, as_of, latest)
    log.info("features as of %s, shard %d/%d: %s", as_of, shard + 1, n_shards, rows)
    return rows


def merge_feature_shards(engine: Engine, store_dir: StoragePath, as_of: date, n_shards: int) -> tuple[dict, dict]:
    """Merge the shards' parts of each sharded feature set into its offline file (the parts stay until the next
    refresh, so a retried merge gives the same files); build the
    ``PLATFORM_FEATURE_SETS`` over every workspace; refit ``user_behaviour``'s P(alive) on every shard's users
    (read part by part: the MBG/NBD pool is the platform's, as in one build). The online rows of those two sets are
    one transaction. A missing part (a shard that did not run) is an error naming it, before anything is written.
    Returns (paths, rows)."""
    missing = [f"{fs.name} shard {k}" for fs in SHARDED_FEATURE_SETS for k in range(n_shards)
               if not shard_part_path(store_dir, fs, as_of, k, n_shards).exists()]
    if missing:
        raise RuntimeError(f"feature parts missing for {as_of} ({n_shards} shards): {', '.join(missing)};"
                           " run every features shard first")
    paths: dict[str, str] = {}
    for fs in SHARDED_FEATURE_SETS:
        if fs is not USER_BEHAVIOUR:
            target = offline_path(store_dir, fs, as_of)
            concat_parquet([shard_part_path(store_dir, fs, as_of, k, n_shards) for k in range(n_shards)], target)
            paths[fs.name] = str(target)
    user_parts = [shard_part_path(store_dir, USER_BEHAVIOUR, as_of, k, n_shards) for k in range(n_shards)]
    inputs = [read_parquet(p, columns=["workspace_id", "user_id", *P_ALIVE_INPUTS]) for p in user_parts]
    model = fit_p_alive(pa.concat_tables([t for t in inputs if t.num_rows] or inputs[:1],
                                         promote_options="permissive").to_pandas())
    # the agents' panel days, and their first call from a narrow read of all history (not every column of it)
    agents = load_daily_aggregates(store_dir, as_of, since=as_of - timedelta(days=AGENT_PANEL_DAYS - 1),
                                   only=("agent_feature", "workspace_errors"))
    first_seen = agent_first_seen(load_daily_aggregates(store_dir, as_of, only=("agent_feature",),
                                                        columns=("workspace_id", "agent_id", "day", "calls"),
                                                        ).agent_feature, as_of)
    rows = {f"ml_features:{USER_BEHAVIOUR.name}": 0}
    with engine.begin() as conn:
        def users(table: pa.Table) -> pa.Table:
            frame = refit_p_alive(table.to_pandas(), model)
            rows[f"ml_features:{USER_BEHAVIOUR.name}"] += publish_online(conn, USER_BEHAVIOUR, as_of, frame)
            return pa.Table.from_pandas(frame, preserve_index=False)

        target = offline_path(store_dir, USER_BEHAVIOUR, as_of)
        concat_parquet(user_parts, target, transform=users, drop=P_ALIVE_INPUTS)
        paths[USER_BEHAVIOUR.name] = str(target)
        for fs in PLATFORM_FEATURE_SETS:
            frame = build_agent_features(agents, as_of, first_seen=first_seen)
            paths[fs.name] = str(write_offline(store_dir, fs, as_of, frame))
            rows[f"ml_features:{fs.name}"] = publish_online(conn, fs, as_of, frame)
    return paths, rows


def sum_rows(parts: list[dict[str, int]]) -> dict[str, int]:
    """Counts per key summed over the dicts (row counts of shards, counts of scored parts)."""
    out: dict[str, int] = {}
    for p in parts:
        for k, v in p.items():
            out[k] = out.get(k, 0) + int(v)
    return out


def build_feature_store(engine: Engine, staging_dir: StoragePath, store_dir: StoragePath, as_of: date,
                        holiday_country: str = "US", growth_mau_window_days: int | None = None,
                        n_shards: int = 1) -> FeatureSummary:
    """Refresh the aggregates, compute every feature set as of ``as_of`` shard by shard (``n_shards`` workspace
    shards, one in memory at a time), write the offline and online stores.

    Each shard's database writes (daily metrics of refreshed days, online features) are one transaction.
    ``growth_mau_window_days``: the MAU window of ``workspace_growth`` (default: the setting
    ``PAE_GROWTH_MAU_WINDOW_DAYS``).
    """
    refreshed = refresh_aggregates(staging_dir, store_dir, as_of)
    days = [date.fromisoformat(d) for d in refreshed["refreshed_days"]]
    shards = [build_feature_shard(engine, store_dir, as_of, days, k, n_shards, holiday_country, growth_mau_window_days)
              for k in range(n_shards)]
    paths, platform_rows = merge_feature_shards(engine, store_dir, as_of, n_shards)
    summary = FeatureSummary(as_of=as_of, refreshed_days=len(days), shards=n_shards, offline_paths=paths,
                             rows={"hourly_days_refreshed": refreshed["hourly_days_refreshed"],
                                   **sum_rows([*shards, platform_rows])})
    log.info("features as of %s: %s", as_of, summary.rows)
    return summary
