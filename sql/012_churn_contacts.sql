-- Churn contacts (issue 17): users that customer success marked as contacted from the dashboard
-- (POST /api/analytics/predictions/churn/contacts), so the next person sees who was already reached.
-- Grain: one row per workspace x user x churn scoring date; marking a user again for the same scores
-- changes nothing (insert ... on conflict do nothing), a later scoring date adds a row.
create table if not exists analytics.churn_contacts (
    id               uuid primary key default gen_random_uuid(),
    workspace_id     uuid not null,
    user_id          uuid not null,
    prediction_date  date not null,          -- the churn scores the contact answered
    contacted_at     timestamptz not null default now(),
    api_key_id       uuid,                   -- analytics.api_keys.id of the key that marked it
    note             text check (note is null or char_length(note) <= 500),
    unique (workspace_id, user_id, prediction_date)
);

-- GET .../churn/contacts: a workspace's latest contact per user.
create index if not exists idx_churn_contacts_ws_user on analytics.churn_contacts (workspace_id, user_id, contacted_at desc);

-- The API connects as the read-only role pae_reader; this table is the one thing it may add rows to
-- (no update, no delete, and no other table).
grant select, insert on analytics.churn_contacts to pae_reader;
