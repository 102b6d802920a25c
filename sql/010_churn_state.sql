-- Churn state (issue 15): each scored user is `active`, `lapsing` or `dormant` beside the probability
-- (rule: models/churn/rhythm.py; a silence of at most max(3 usual gaps, 7 days) is active, beyond
-- max(10 usual gaps, 30 days) dormant). The pipeline writes it as the last entry of risk_factors
-- ({"driver": "state", "state": ...}); this column is generated from that entry, so the publisher's
-- upsert needs no change and rows scored before issue 15 read NULL.
alter table analytics.churn_predictions add column if not exists state text
    generated always as (jsonb_path_query_first(risk_factors, '$[*] ? (@.driver == "state").state') #>> '{}') stored;

-- GET /api/analytics/predictions/churn?state=...: a workspace's users of one state on the latest date.
create index if not exists idx_churn_ws_date_state on analytics.churn_predictions
    (workspace_id, prediction_date, state);
