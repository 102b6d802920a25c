-- analytics.usage_events partitioned by UTC month (declarative range partitioning on event_time), so each
-- month's random-uuid primary key index stays small and loading stays linear in the rows loaded.
-- Grain unchanged: one row per event (or aggregate of identical events). The primary key must hold the
-- partition key: (event_key, event_time). event_key still identifies an event: it is the md5 of the contract
-- columns (event_time among them), or of event_id, whose rows are checked against loaded content first.
-- An existing plain table is converted in place, in this migration's one transaction: rename it, create the
-- partitioned table under the old name with one partition per month that holds rows, move the rows, drop the
-- old table. A second run finds a partitioned table and changes nothing.

-- Creates the partition of the month holding `month_start` (any timestamp in it) unless it exists, moving rows
-- of that month out of the default partition first. Security definer: partitions need the parent's owner,
-- and the loader may run as pae_writer.
create or replace function analytics.ensure_usage_events_partition(month_start timestamptz)
returns text
language plpgsql
security definer
set search_path = pg_catalog, analytics
as $$
declare
    lo timestamptz := date_trunc('month', month_start at time zone 'UTC') at time zone 'UTC';
    hi timestamptz := (date_trunc('month', month_start at time zone 'UTC') + interval '1 month') at time zone 'UTC';
    part text := 'usage_events_' || to_char(month_start at time zone 'UTC', 'YYYY_MM');
begin
    if to_regclass('analytics.' || part) is not null then
        return part;
    end if;
    perform pg_advisory_xact_lock(hashtext('pae.usage_events_partition'));
    if to_regclass('analytics.' || part) is not null then  -- created while we waited
        return part;
    end if;
    execute format('create table analytics.%I (like analytics.usage_events including defaults including constraints)',
                   part);
    if to_regclass('analytics.usage_events_default') is not null then
        execute format('with moved as (delete from analytics.usage_events_default'
                       ' where event_time >= %L and event_time < %L returning *)'
                       ' insert into analytics.%I select * from moved', lo, hi, part);
    end if;
    execute format('alter table analytics.usage_events attach partition analytics.%I for values from (%L) to (%L)',
                   part, lo, hi);
    return part;
end
$$;

do $$
declare
    old_table regclass;
    r record;
begin
    if exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
               where n.nspname = 'analytics' and c.relname = 'usage_events' and c.relkind = 'p') then
        return;  -- already partitioned
    end if;
    lock table analytics.usage_events in access exclusive mode;  -- no load in between
    alter table analytics.usage_events rename to usage_events_unpartitioned;
    old_table := 'analytics.usage_events_unpartitioned'::regclass;
    -- free the index names (schema-wide) for the new table
    for r in select conname from pg_constraint where conrelid = old_table and contype in ('p', 'u') loop
        execute format('alter table analytics.usage_events_unpartitioned drop constraint %I', r.conname);
    end loop;
    for r in select c.relname from pg_index i join pg_class c on c.oid = i.indexrelid where i.indrelid = old_table loop
        execute format('drop index analytics.%I', r.relname);
    end loop;

    create table analytics.usage_events (
        event_key     uuid not null,
        event_time    timestamptz not null,
        workspace_id  text not null check (workspace_id <> ''),
        user_id       text,
        agent_id      text,
        feature       text not null check (feature <> ''),
        credits       numeric(20, 6) not null check (credits >= 0),
        status        text not null check (status in ('ok', 'error')),
        count         integer not null default 1 check (count >= 1),
        extra         jsonb,
        source_file   text,
        loaded_at     timestamptz not null default now(),
        primary key (event_key, event_time)
    ) partition by range (event_time);
    -- rows inserted by anything other than the loader (which creates its months' partitions first) land here
    create table analytics.usage_events_default partition of analytics.usage_events default;
    create index idx_usage_events_time on analytics.usage_events (event_time);
    create index idx_usage_events_agent_ws_time on analytics.usage_events (workspace_id, event_time)
        where agent_id is not null;

    for r in select distinct date_trunc('month', event_time at time zone 'UTC') as m
             from analytics.usage_events_unpartitioned order by 1 loop
        perform analytics.ensure_usage_events_partition(r.m at time zone 'UTC');
    end loop;
    insert into analytics.usage_events
        (event_key, event_time, workspace_id, user_id, agent_id, feature, credits, status, count, extra,
         source_file, loaded_at)
    select event_key, event_time, workspace_id, user_id, agent_id, feature, credits, status, count, extra,
           source_file, loaded_at
    from analytics.usage_events_unpartitioned
    order by event_time;
    drop table analytics.usage_events_unpartitioned;
end
$$;

grant select on analytics.usage_events to pae_reader;
grant select, insert, update, delete on analytics.usage_events to pae_writer;
revoke all on function analytics.ensure_usage_events_partition(timestamptz) from public;
grant execute on function analytics.ensure_usage_events_partition(timestamptz) to pae_writer;
