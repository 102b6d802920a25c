-- Who runs a step (host and process id), so a later run can tell a step left 'running' by a killed process
-- and mark it 'abandoned' instead of leaving it running forever.
alter table analytics.pipeline_runs add column if not exists host text;
alter table analytics.pipeline_runs add column if not exists pid integer;
alter table analytics.pipeline_runs drop constraint if exists pipeline_runs_status_check;
alter table analytics.pipeline_runs add constraint pipeline_runs_status_check
    check (status in ('running', 'success', 'failed', 'insufficient_data', 'skipped', 'abandoned'));
create index if not exists idx_pipeline_runs_running on analytics.pipeline_runs (started_at) where status = 'running';
