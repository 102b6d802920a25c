-- API keys and the indexes the read-only API's queries use.

-- API keys. Grain: one row per key. Only a keyed hash of the key is stored (HMAC-SHA256 with the server's
-- pepper, see services/keys.py); the raw key is shown once at creation and never stored.
-- The reader role (the API, BI tools) may SELECT it to verify keys; nobody but the schema owner writes it.
create table if not exists analytics.api_keys (
    id             uuid primary key default gen_random_uuid(),
    name           text not null check (name <> ''),
    key_hash       char(64) not null unique,
    key_hint       varchar(4) not null,
    workspace_ids  uuid[] not null check (cardinality(workspace_ids) > 0),
    created_at     timestamptz not null default now(),
    revoked_at     timestamptz
);
grant select on analytics.api_keys to pae_reader;
revoke all on analytics.api_keys from pae_writer;

-- Consumption forecast of a workspace: the latest as-of date, then its rows by date.
create index if not exists idx_predictions_ws_asof on analytics.predictions
    (workspace_id, prediction_type, target_metric, granularity, scenario, as_of_date, prediction_date);

-- Churn scores of a workspace: the latest prediction date, then users by risk.
create index if not exists idx_churn_ws_date_risk on analytics.churn_predictions
    (workspace_id, prediction_date desc, risk_score desc);

-- readyz: the time of the latest written predictions.
create index if not exists idx_predictions_created on analytics.predictions (created_at);
create index if not exists idx_churn_created on analytics.churn_predictions (created_at);
