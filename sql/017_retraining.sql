-- Retraining (model management): why and when each retrain ran, and what it produced.
--
-- retrain_runs. Grain: one row per retrain request of a kind. A nightly run whose drift check or realised-accuracy
-- alert fires records a 'pending' row; `pae retrain` / the retrain DAG picks pending rows up, runs the retrain and
-- finishes them (status 'success' / 'failed'); a scheduled or manual retrain inserts its own row.
-- reason: schedule | drift | accuracy | manual | no-champion.
create table if not exists analytics.retrain_runs (
    retrain_id       bigserial primary key,
    kind             varchar(50) not null,
    reason           varchar(20) not null check (reason in ('schedule', 'drift', 'accuracy', 'manual', 'no-champion')),
    status           varchar(20) not null default 'pending' check (status in ('pending', 'running', 'success', 'failed')),
    requested_at     timestamptz not null default now(),
    requested_for    date,
    started_at       timestamptz,
    finished_at      timestamptz,
    trained_through  date,
    figures          jsonb not null default '{}'::jsonb,
    model_version    varchar(50),
    decision         varchar(20),
    error            text
);
create index if not exists idx_retrain_runs_kind on analytics.retrain_runs (kind, requested_at desc);
-- at most one pending request per kind: a second trigger before the retrain ran adds its reason to the figures
create unique index if not exists uq_retrain_runs_pending on analytics.retrain_runs (kind) where status = 'pending';

grant select on analytics.retrain_runs to pae_reader;
grant select, insert, update, delete on analytics.retrain_runs to pae_writer;
grant usage, select on sequence analytics.retrain_runs_retrain_id_seq to pae_writer;
