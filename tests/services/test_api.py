"""The HTTP API through FastAPI's TestClient, reading the session database as the read-only role."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from core.ids import entity_uuid
from core.settings import Settings
from services.api.main import create_app
from services.keys import create_api_key, revoke_api_key
from tests.services.test_service import AS_OF, add_workspace, seed_churn, seed_consumption

PEPPER = "test-pepper"
CONSUMPTION = "/api/analytics/predictions/consumption"
CHURN = "/api/analytics/predictions/churn"


@pytest.fixture(scope="module")
def app(db_url, engine, tmp_path_factory):
    app = create_app(Settings(database_url=db_url, data_dir=tmp_path_factory.mktemp("pae"), api_key_pepper=PEPPER,
                              api_stale_after_hours=36))
    yield app
    app.state.engine.dispose()


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture
def db(clean_db):
    with clean_db.begin() as conn:
        conn.execute(sa.text("truncate analytics.api_keys"))
    return clean_db


@pytest.fixture
def acme(db):
    """Two workspaces with forecasts and churn scores, and a key for the first one only."""
    with db.begin() as conn:
        seed_consumption(conn, "acme")
        seed_consumption(conn, "globex")
        seed_churn(conn, "acme", {"alice": 0.91, "bob": 0.15, "carol": 0.55, "dave": 0.72})
        seed_churn(conn, "globex", {"eve": 0.99})
    return {"X-API-Key": create_api_key(db, ["acme"], "test", pepper=PEPPER)}


def test_health_needs_no_key(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_api_needs_a_valid_key(client, db, acme):
    params = {"workspace_id": "acme"}
    missing = client.get(CONSUMPTION, params=params)
    assert missing.status_code == 401 and "X-API-Key" in missing.json()["detail"]
    assert missing.headers["www-authenticate"] == "ApiKey"
    for bad in ("nope", "pae_" + "A" * 43, acme["X-API-Key"][:-1] + "x"):
        r = client.get(CONSUMPTION, params=params, headers={"X-API-Key": bad})
        assert r.status_code == 401 and r.json()["detail"] == "invalid API key"
    assert client.get(CONSUMPTION, params=params, headers=acme).status_code == 200

    with db.connect() as conn:
        key_id = conn.execute(sa.text("select id from analytics.api_keys")).scalar_one()
    assert revoke_api_key(db, str(key_id))
    revoked = client.get(CHURN, params=params, headers=acme)
    assert revoked.status_code == 401 and revoked.json()["detail"] == "API key revoked"


def test_only_the_hash_is_stored(db, acme):
    key = acme["X-API-Key"]
    with db.connect() as conn:
        row = conn.execute(sa.text("select * from analytics.api_keys")).mappings().one()
    assert key not in {str(v) for v in row.values()}
    assert row["key_hint"] == key[-4:] and row["name"] == "test" and row["revoked_at"] is None
    assert row["workspace_ids"] == [entity_uuid("workspace", "acme")]


def test_key_for_another_workspace_is_forbidden(client, acme):
    for ws in ("globex", str(entity_uuid("workspace", "globex")), "no-such-workspace"):
        for path in (CONSUMPTION, CHURN):
            r = client.get(path, params={"workspace_id": ws}, headers=acme)
            assert r.status_code == 403, (path, ws)
            assert "globex" not in r.text and "eve" not in r.text


def test_external_id_and_uuid_give_the_same_answer(client, acme):
    ws = entity_uuid("workspace", "acme")
    for path in (CONSUMPTION, CHURN):
        by_ext = client.get(path, params={"workspace_id": "acme"}, headers=acme)
        by_uuid = client.get(path, params={"workspace_id": str(ws).upper()}, headers=acme)
        assert by_ext.status_code == by_uuid.status_code == 200
        assert by_ext.json() == by_uuid.json()
        assert by_ext.json()["workspace"] == {"id": str(ws), "external_id": "acme"}


def test_consumption_breakdown_sums_to_total(client, acme):
    body = client.get(CONSUMPTION, params={"workspace_id": "acme", "days_ahead": 14}, headers=acme).json()
    assert body["as_of_date"] == AS_OF.isoformat() and body["granularity"] == "day"
    assert len(body["predictions"]) == 14 and {len(b["predictions"]) for b in body["breakdown"]} == {14}
    for i, total in enumerate(body["predictions"]):
        parts = [b["predictions"][i] for b in body["breakdown"]]
        assert {p["date"] for p in parts} == {total["date"]}
        assert sum(p["predicted_value"] for p in parts) == pytest.approx(total["predicted_value"])
        assert total["lower"] <= total["predicted_value"] <= total["upper"]
    assert len(body["history"]) == 90 and body["history"][-1]["date"] == AS_OF.isoformat()

    week = client.get(CONSUMPTION, params={"workspace_id": "acme", "days_ahead": 14, "granularity": "week"},
                      headers=acme).json()
    assert [w["days"] for w in week["predictions"]] == [7, 7]
    assert sum(w["predicted_value"] for w in week["predictions"]) == pytest.approx(
        sum(d["predicted_value"] for d in body["predictions"]))


def test_churn_sorted_by_risk_with_factors_and_actions(client, acme):
    body = client.get(CHURN, params={"workspace_id": "acme"}, headers=acme).json()
    assert body["total"] == 4 and body["prediction_date"] == AS_OF.isoformat()
    scores = [u["risk_score"] for u in body["users"]]
    assert scores == sorted(scores, reverse=True)
    assert [u["user_external_id"] for u in body["users"]] == ["alice", "dave", "carol", "bob"]
    top = body["users"][0]
    assert top["user_id"] == str(entity_uuid("user", "alice"))
    assert set(top["risk_factors"][0]) == {"feature", "contribution", "value", "direction", "text", "driver"}
    assert set(top["recommended_actions"][0]) == {"action_id", "title", "reason", "priority", "drivers"}

    page = client.get(CHURN, params={"workspace_id": "acme", "risk_threshold": 0.5, "limit": 2, "offset": 1},
                      headers=acme).json()
    assert page["total"] == 3 and [u["user_external_id"] for u in page["users"]] == ["dave", "carol"]
    some = client.get(CHURN, params={"workspace_id": "acme", "users": ["bob", str(entity_uuid("user", "carol"))]},
                      headers=acme).json()
    assert [u["user_external_id"] for u in some["users"]] == ["carol", "bob"]


def test_unknown_or_unscored_workspace_is_404(client, db, acme):
    with db.begin() as conn:
        add_workspace(conn, "newco")
    key = {"X-API-Key": create_api_key(db, ["newco"], "new", pepper=PEPPER)}
    r = client.get(CONSUMPTION, params={"workspace_id": "newco"}, headers=key)
    assert r.status_code == 404 and "run the nightly pipeline" in r.json()["detail"]
    assert client.get(CHURN, params={"workspace_id": "newco"}, headers=key).status_code == 404
    with db.begin() as conn:
        conn.execute(sa.text("delete from analytics.entities where external_id = 'newco'"))
    r = client.get(CONSUMPTION, params={"workspace_id": "newco"}, headers=key)
    assert r.status_code == 404 and "unknown workspace" in r.json()["detail"]


BAD_PARAMETERS = [
    (CONSUMPTION, {"days_ahead": 0}, "days_ahead"),
    (CONSUMPTION, {"days_ahead": 366}, "days_ahead"),
    (CONSUMPTION, {"days_ahead": "ten"}, "days_ahead"),
    (CONSUMPTION, {"granularity": "month"}, "granularity"),
    (CHURN, {"risk_threshold": 1.5}, "risk_threshold"),
    (CHURN, {"risk_threshold": -0.1}, "risk_threshold"),
    (CHURN, {"risk_threshold": "nan"}, "risk_threshold"),
    (CHURN, {"limit": 0}, "limit"),
    (CHURN, {"limit": 1001}, "limit"),
    (CHURN, {"offset": -1}, "offset"),
    (CHURN, {"workspace_id": ""}, "workspace_id"),
    (CHURN, {"workspace_id": None}, "workspace_id"),
]


def test_bad_parameters_are_422(client, acme):
    for path, params, field in BAD_PARAMETERS:
        params = {k: v for k, v in {"workspace_id": "acme", **params}.items() if v is not None}
        r = client.get(path, params=params, headers=acme)
        assert r.status_code == 422, (path, params)
        assert [e["loc"] for e in r.json()["detail"]] == [["query", field]], (path, params)
        assert r.json()["detail"][0]["msg"]


HOSTILE = [
    "' OR 1=1 --", "acme' OR '1'='1", "acme'; drop table analytics.predictions; --", "\" or \"\"=\"",
    "acme%", "%", "_", "*", "acme\\", "工作区🚀", "ａｃｍｅ", "../../etc/passwd", "${jndi:ldap://x}", "a" * 257,
    "a" * 60_000, "acme\x00", "\x00", "acme\n", "\u202eemca", "null", "[]",
]


def test_hostile_inputs_never_500_and_leak_nothing(client, db, acme):
    for value in HOSTILE:
        for path in (CONSUMPTION, CHURN):
            r = client.get(path, params={"workspace_id": value}, headers=acme)
            assert r.status_code in (403, 422), (path, value, r.status_code)
            assert "globex" not in r.text and "alice" not in r.text
        r = client.get(CHURN, params={"workspace_id": "acme", "users": value}, headers=acme)
        assert r.status_code in (200, 422), (value, r.status_code)
        if r.status_code == 200:
            assert r.json()["users"] == []
        r = client.get(CHURN, params={"workspace_id": "acme"}, headers={"X-API-Key": value[:1000].encode()})
        assert r.status_code == 401, (value, r.status_code)


def test_huge_numbers_and_many_values_are_422(client, acme):
    for params in ({"limit": 10**30}, {"offset": 10**30}, {"risk_threshold": "1e400"},
                   {"users": [f"u{i}" for i in range(1001)]}):
        assert client.get(CHURN, params={"workspace_id": "acme", **params}, headers=acme).status_code == 422
    assert client.get(CONSUMPTION, params={"workspace_id": "acme", "days_ahead": 10**30},
                      headers=acme).status_code == 422


def test_tables_survive_hostile_inputs_and_quotes_in_ids_work(client, db, acme):
    with db.begin() as conn:
        seed_consumption(conn, "x' OR 1=1 --")
    key = {"X-API-Key": create_api_key(db, ["x' OR 1=1 --"], "quote", pepper=PEPPER)}
    r = client.get(CONSUMPTION, params={"workspace_id": "x' OR 1=1 --"}, headers=key)
    assert r.status_code == 200 and r.json()["workspace"]["external_id"] == "x' OR 1=1 --"
    with db.connect() as conn:
        assert conn.execute(sa.text("select count(distinct workspace_id) from analytics.predictions")).scalar() == 3


def test_readyz_reports_fresh_and_stale(client, db):
    r = client.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "stale" and body["predictions"]["latest_at"] is None and body["pipeline_run"]["stale"]

    now = datetime.now(timezone.utc)
    with db.begin() as conn:
        seed_consumption(conn, "acme")
        seed_churn(conn, "acme", {"alice": 0.5})
        conn.execute(sa.text("insert into analytics.pipeline_runs (logical_date, step, status, started_at, finished_at)"
                             " values (:d, 'publish', 'success', :t, :t), (:d, 'train', 'failed', :now, :now)"),
                     {"d": AS_OF, "t": now - timedelta(hours=2), "now": now})
    body = client.get("/readyz").json()
    assert body["status"] == "ok" and body["stale_after_hours"] == 36
    assert body["pipeline_run"]["step"] == "publish" and 1.9 < body["pipeline_run"]["age_hours"] < 2.1
    assert body["predictions"]["age_hours"] < 1 and not body["predictions"]["stale"]

    with db.begin() as conn:
        conn.execute(sa.text("update analytics.pipeline_runs set finished_at = :t where status = 'success'"),
                     {"t": now - timedelta(hours=48)})
    body = client.get("/readyz").json()
    assert body["status"] == "stale" and body["pipeline_run"]["stale"] and not body["churn_predictions"]["stale"]


def test_database_down_is_503(tmp_path):
    settings = Settings(database_url="postgresql://postgres@127.0.0.1:1/none", data_dir=tmp_path, api_key_pepper=PEPPER)
    with TestClient(create_app(settings)) as down:
        assert down.get("/healthz").status_code == 200
        r = down.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "unavailable"
        r = down.get(CHURN, params={"workspace_id": "acme"}, headers={"X-API-Key": "pae_" + "A" * 43})
        assert r.status_code == 503


def test_api_engine_is_the_reader_and_cannot_write(app, db, acme):
    with app.state.engine.connect() as conn:
        assert conn.execute(sa.text("select current_user")).scalar() == "pae_reader"
        for stmt in ("insert into analytics.predictions (workspace_id, prediction_type, target_metric,"
                     " prediction_date) values (gen_random_uuid(), 'x', 'y', current_date)",
                     "update analytics.api_keys set revoked_at = null",
                     "delete from analytics.churn_predictions",
                     "insert into analytics.api_keys (name, key_hash, key_hint, workspace_ids)"
                     " values ('x', repeat('0', 64), 'abcd', array[gen_random_uuid()])"):
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                conn.execute(sa.text(stmt))
            conn.rollback()


def test_every_route_has_a_response_model(app):
    for path, methods in app.openapi()["paths"].items():
        for op in methods.values():
            ok = min(code for code in op["responses"] if code.startswith("2"))  # 200, or 202 for an accepted job
            assert "$ref" in op["responses"][ok]["content"]["application/json"]["schema"], path
    assert app.openapi()["paths"][CHURN]["get"]["security"] == [{"APIKeyHeader": []}]


def test_cli_creates_lists_and_revokes_keys(client, db, db_url, tmp_path, monkeypatch, capsys):
    import argparse

    from pipelines import cli as main

    monkeypatch.setattr(main, "get_settings", lambda: Settings(database_url=db_url, data_dir=tmp_path,
                                                               api_key_pepper=PEPPER))
    parser = argparse.ArgumentParser(prog="pae")
    main.add_api_parsers(parser.add_subparsers(dest="command", required=True))
    serve = parser.parse_args(["serve", "--host", "0.0.0.0", "--port", "9000"])
    assert (serve.func, serve.host, serve.port) == (main.cmd_serve, "0.0.0.0", 9000)

    with db.begin() as conn:
        seed_churn(conn, "acme", {"alice": 0.5})
        ws = add_workspace(conn, "acme")

    def run(*argv: str) -> int:
        args = parser.parse_args(list(argv))
        return args.func(args)

    assert run("api-key", "create", "--workspace", "acme", "--workspace", str(ws), "--name", "cli") == 0
    key = capsys.readouterr().out.strip()
    assert client.get(CHURN, params={"workspace_id": "acme"}, headers={"X-API-Key": key}).status_code == 200
    assert run("api-key", "create", "--workspace", "nope") == 2
    assert "unknown workspace 'nope'" in capsys.readouterr().err

    assert run("api-key", "list") == 0
    listed = capsys.readouterr().out
    assert key[-4:] in listed and key not in listed and "active" in listed
    key_id = listed.split()[0]
    assert run("api-key", "revoke", key_id) == 0 and run("api-key", "revoke", key_id) == 2
    assert client.get(CHURN, params={"workspace_id": "acme"}, headers={"X-API-Key": key}).status_code == 401


def test_reader_url_swaps_the_user_unless_given(tmp_path):
    from services.api.deps import reader_url

    derived = Settings(database_url="postgresql://postgres:secret@db.local:5433/pae", data_dir=tmp_path)
    assert reader_url(derived) == "postgresql://pae_reader@db.local:5433/pae"
    given = Settings(database_url="postgresql://postgres@h/pae", api_database_url="postgresql://ro:pw@h/pae",
                     data_dir=tmp_path)
    assert reader_url(given) == "postgresql://ro:pw@h/pae"


def test_api_refuses_an_empty_pepper_outside_the_embedded_demo(db_url, tmp_path, monkeypatch, capsys):
    with pytest.raises(ValueError, match="PAE_API_KEY_PEPPER"):
        create_app(Settings(database_url=db_url, data_dir=tmp_path))
    from pipelines import cli

    monkeypatch.setattr(cli, "get_settings", lambda: Settings(database_url=db_url, data_dir=tmp_path))
    assert cli.main(["serve", "--port", "1"]) == 2  # a message, not a traceback, and nothing is served
    assert "PAE_API_KEY_PEPPER" in capsys.readouterr().err
