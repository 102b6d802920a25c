"""What happened, in the peak-usage predictions' key space, for realised accuracy (``pipelines/monitor.py``).

- Hourly ``calls`` / ``credits`` per UTC date and hour (``granularity = 'hour'``), from the loaded events; an hour
  without events is a zero, as in the kind's hourly series (hours after the last hour with events of any workspace
  are left out, so a day still loading is not scored as zeros).
- Daily ``calls_peak`` / ``credits_peak`` per **local** day (the workspace's zone from the ``workspace_hourly``
  online features, which hold the declared zone when there is one; UTC when unknown): the day's highest hour and,
  as ``actual_hour``, the local hour it happened at (scored against the predicted peak hour, within one hour).
  ``prediction_hour = -1``: the predicted peak hour is an attribute of the day's peak, not a key. Only local days
  wholly inside the loaded hours are given.
"""
from __future__ import annotations

HOUR_FREE_METRICS = ("calls_peak", "credits_peak")
MONITORED_METRICS = ("calls", "credits", *HOUR_FREE_METRICS)

REALISED_PEAKS_SQL = """
with bounds as (
    select cast(:since as timestamp) - interval '1 day' as lo,
           least(cast(:until as timestamp) + interval '2 days',
                 (select date_trunc('hour', max(event_time) at time zone 'UTC') + interval '1 hour'
                  from analytics.usage_events
                  where event_time >= cast(:since as timestamp) at time zone 'UTC' - interval '1 day'
                    and event_time < cast(:until as timestamp) at time zone 'UTC' + interval '2 days')) as hi
),
hourly as (
    select e.entity_id as workspace_id, date_trunc('hour', u.event_time at time zone 'UTC') as hour_utc,
           sum(u.count)::float8 as calls, sum(u.credits)::float8 as credits
    from analytics.usage_events u
    join analytics.entities e on e.entity_type = 'workspace' and e.external_id = u.workspace_id
    cross join bounds b
    where u.event_time >= b.lo at time zone 'UTC' and u.event_time < b.hi at time zone 'UTC'
    group by 1, 2
),
grid as (
    select w.workspace_id, g.hour_utc, coalesce(h.calls, 0) as calls, coalesce(h.credits, 0) as credits
    from (select distinct workspace_id from hourly) w
    cross join bounds b
    cross join lateral generate_series(b.lo, b.hi - interval '1 hour', interval '1 hour') as g(hour_utc)
    left join hourly h on h.workspace_id = w.workspace_id and h.hour_utc = g.hour_utc
),
zones as (
    select f.entity_id as workspace_id, f.features ->> 'time_zone' as tz
    from analytics.ml_features f
    where f.entity_type = 'workspace' and f.feature_set = 'workspace_hourly'
      and f.features ->> 'time_zone' in (select name from pg_timezone_names)
),
local_hours as (
    select g.workspace_id, coalesce(z.tz, 'UTC') as tz, g.hour_utc,
           (g.hour_utc at time zone 'UTC') at time zone coalesce(z.tz, 'UTC') as local_ts, g.calls, g.credits
    from grid g left join zones z on z.workspace_id = g.workspace_id
),
local_days as (
    select l.*, l.local_ts::date as local_date
    from local_hours l cross join bounds b
    where cast(l.local_ts::date as timestamp) at time zone l.tz >= b.lo at time zone 'UTC'
      and cast(l.local_ts::date + 1 as timestamp) at time zone l.tz <= b.hi at time zone 'UTC'
),
peaks as (
    select distinct on (d.workspace_id, m.metric, d.local_date)
           d.workspace_id, m.metric, d.local_date, extract(hour from d.local_ts)::int as peak_hour, m.value
    from local_days d
    cross join lateral (values ('calls', d.calls), ('credits', d.credits)) as m(metric, value)
    order by d.workspace_id, m.metric, d.local_date, m.value desc, d.local_ts
)
select g.workspace_id, m.metric as target_metric, 'total' as dimension, 'hour' as granularity,
       g.hour_utc::date as prediction_date, extract(hour from g.hour_utc)::int as prediction_hour,
       m.value as actual, null::int as actual_hour
from grid g
cross join lateral (values ('calls', g.calls), ('credits', g.credits)) as m(metric, value)
where g.hour_utc::date between :since and :until
union all
select workspace_id, metric || '_peak', 'total', 'day', local_date, -1, value, peak_hour
from peaks
where local_date between :since and :until
"""
