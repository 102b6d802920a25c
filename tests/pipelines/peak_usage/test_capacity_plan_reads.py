"""v_capacity_plan read for one workspace touches only that workspace's prediction rows (sql/021)."""
import json

import sqlalchemy as sa

from services.peak_usage import _DAYS

SEED = """
insert into analytics.predictions (workspace_id, prediction_type, target_metric, dimension, granularity, scenario,
    prediction_date, prediction_hour, predicted_value, confidence_lower, confidence_upper, model_version, as_of_date)
select md5('ws' || i)::uuid, 'peak_usage', m, 'total', 'day', 'likely', d::date, 14, 100 + i, 90, 110 + i, '1',
       least(d::date - 1, date '2026-03-31')
from generate_series(1, 6) i
cross join generate_series(date '2026-03-20', date '2026-04-07', interval '1 day') d
cross join unnest(array['calls_peak', 'credits_peak', 'calls_capacity', 'credits_capacity']) m
"""


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def test_one_workspace_read_uses_only_its_rows(clean_db):
    with clean_db.begin() as conn:
        conn.execute(sa.text(SEED))
        ws = str(conn.execute(sa.text("select md5('ws3')::uuid")).scalar())
    with clean_db.begin() as conn:
        rows = conn.execute(_DAYS, {"ws": ws, "days": 14}).mappings().all()
        # the tables are tiny here: make the planner show whether an index can serve the workspace predicate
        conn.execute(sa.text("set local enable_seqscan = off"))
        plan = conn.execute(sa.text("explain (format json) " + _DAYS.text), {"ws": ws, "days": 14}).scalar()
    plan = (plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]
    assert len(rows) == 2 * 7 and {r["as_of_date"].isoformat() for r in rows} == {"2026-03-31"}
    assert all(r["capacity_need"] == 103 for r in rows)  # joined to the capacity row of the same day and run
    scans = [n for n in _nodes(plan) if n.get("Relation Name") == "predictions"]
    assert scans and not [n for n in _nodes(plan) if n["Node Type"] == "CTE Scan"]
    for node in scans:  # every read of predictions is bounded to the workspace by an index condition
        assert "workspace_id" in node.get("Index Cond", "") + node.get("Recheck Cond", ""), node
