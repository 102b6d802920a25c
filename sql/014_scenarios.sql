-- Saved what-if scenarios (issue 13): named requests of POST /api/analytics/predictions/what-if that a person
-- saved (POST /api/analytics/scenarios) to find again (GET), with who saved them and the as-of date of the
-- predictions they were computed on. Grain: one row per workspace x name; saving the same name again updates it.
create table if not exists analytics.scenarios (
    id            uuid primary key default gen_random_uuid(),
    workspace_id  uuid not null,
    name          text not null check (char_length(name) between 1 and 200),
    description   text check (description is null or char_length(description) <= 1000),
    request       jsonb not null,          -- base_scenario, adjustments, metrics, horizon_days
    as_of_date    date not null,           -- the predictions' as-of date when it was saved
    summary       jsonb not null default '[]'::jsonb,  -- the difference per metric and dimension then
    saved_by      text,                    -- the name of the API key that saved it
    api_key_id    uuid,                    -- analytics.api_keys.id of that key
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    unique (workspace_id, name)
);
create index if not exists idx_scenarios_ws_updated on analytics.scenarios (workspace_id, updated_at desc);

-- The API reads as pae_reader (SELECT, granted by default privileges) and writes scenarios as its own role,
-- pae_scenario_writer, which may read, insert and update this table and nothing else (no delete; no other
-- table, so a bug or an injection in the write path cannot touch the predictions).
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'pae_scenario_writer') then
        create role pae_scenario_writer login;
    end if;
end
$$;
grant usage on schema analytics to pae_scenario_writer;
grant select, insert, update on analytics.scenarios to pae_scenario_writer;
grant select on analytics.scenarios to pae_reader;

-- What-if "agents of a kind" (services/what_if_data.py) reads one workspace's agent events of the last 28 days:
-- with only the event_time index that scanned every workspace's events of those days (~450 ms on 200 workspaces);
-- this partial index (agent rows only) makes it ~2-13 ms. Built in about 1 s per 2 million events.
create index if not exists idx_usage_events_agent_ws_time
    on analytics.usage_events (workspace_id, event_time) where agent_id is not null;
