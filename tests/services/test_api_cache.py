"""The API's response cache, ETags and key cache (services/api/cache.py, services/api/auth.py), on the real DB."""
from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pandas as pd
import psutil
import pytest
import sqlalchemy as sa
from fastapi import Request
from fastapi.testclient import TestClient

import services.api.cache as cache_module
from core.ids import entity_uuid
from core.runs import recorded_step
from core.settings import Settings
from pipelines.peak_usage.capacity import clear_capacity, set_capacity
from pipelines.publish import publish_predictions
from services.api.cache import CachedBody, ResponseCache, etag_matches
from services.api.schemas import Liveness
from services.keys import revoke_api_key
from services.predictive_analytics import NoPredictionsError
from tests.services.conftest import api_client, api_key_header
from tests.services.test_service import AS_OF, seed_churn, seed_consumption

PEPPER = "cache-test-pepper"
CONSUMPTION = "/api/analytics/predictions/consumption"
CHURN = "/api/analytics/predictions/churn"
WHAT_IF = "/api/analytics/predictions/what-if"
VERSION_SECONDS = 0.3


def make_client(db_url, tmp_path, **overrides) -> AbstractContextManager[TestClient]:
    """The started API with the production key cache and a short data-version interval; disposed on exit."""
    return api_client(db_url, tmp_path / "pae", PEPPER,
                      **{"api_cache_version_seconds": VERSION_SECONDS, "api_key_cache_seconds": 30.0, **overrides})


@pytest.fixture
def db(clean_db):
    with clean_db.begin() as conn:
        conn.execute(sa.text("truncate analytics.api_keys, analytics.capacity_limits"))
        seed_consumption(conn, "acme")
        seed_consumption(conn, "globex")
        seed_churn(conn, "acme", {"alice": 0.91, "bob": 0.15})
        seed_churn(conn, "globex", {"eve": 0.99})
    return clean_db


@pytest.fixture
def keys(db) -> dict[str, dict[str, str]]:
    return {ws: api_key_header(db, [ws], f"key-{ws}", PEPPER) for ws in ("acme", "globex")}


@pytest.fixture
def client(db_url, tmp_path, db):
    with make_client(db_url, tmp_path) as c:
        yield c


def _republish(engine, as_of, factor: float) -> None:
    """A publish step as the nightly run does it: acme's total and features as of ``as_of``, values x factor."""
    days = range(1, 31)
    frame = pd.DataFrame([{"workspace_id": "acme", "target_metric": "credits", "dimension": dim,
                           "prediction_date": as_of + timedelta(days=d), "predicted_value": factor * (100 + d),
                           "confidence_lower": factor * 80.0, "confidence_upper": factor * (130 + d),
                           "confidence_level": 0.95, "model_version": "ets-v4"}
                          for d in days for dim in ("total",)])
    with recorded_step(engine, "publish", as_of):
        with engine.begin() as conn:
            publish_predictions(conn, frame, "credit_consumption", as_of)


def test_headers_etag_and_not_modified(client, keys):
    params = {"workspace_id": "acme", "days_ahead": 14}
    first = client.get(CONSUMPTION, params=params, headers=keys["acme"])
    assert first.status_code == 200 and first.headers["content-type"] == "application/json"
    etag = first.headers["etag"]
    assert etag == '"' + hashlib.blake2b(first.content, digest_size=16).hexdigest() + '"'  # strong, from the body
    assert first.headers["cache-control"] == "private, max-age=60" and first.headers["vary"] == "X-API-Key"
    assert first.headers["x-cache"] == "miss"
    assert len(first.json()["predictions"]) == 14

    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = client.get(CONSUMPTION, params=params, headers={**keys["acme"], "If-None-Match": header})
        assert again.status_code == 304 and again.content == b"" and again.headers["x-cache"] == "hit", header
        assert again.headers["etag"] == etag and again.headers["cache-control"] == "private, max-age=60"
    changed = client.get(CONSUMPTION, params=params, headers={**keys["acme"], "If-None-Match": '"other"'})
    assert changed.status_code == 200 and changed.content == first.content
    other_query = client.get(CONSUMPTION, params={**params, "days_ahead": 7}, headers=keys["acme"])
    assert other_query.headers["etag"] != etag and len(other_query.json()["predictions"]) == 7


def test_second_read_comes_from_the_cache(client, keys):
    cache: ResponseCache = client.app.state.response_cache
    by_ext = client.get(CHURN, params={"workspace_id": "acme"}, headers=keys["acme"])
    misses = cache.misses
    by_uuid = client.get(CHURN, params={"workspace_id": str(entity_uuid("workspace", "acme"))}, headers=keys["acme"])
    assert by_ext.status_code == by_uuid.status_code == 200 and by_uuid.content == by_ext.content
    assert cache.misses == misses and cache.hits >= 1  # the same workspace by UUID: the same entry
    filtered = client.get(CHURN, params={"workspace_id": "acme", "risk_threshold": 0.5}, headers=keys["acme"])
    assert cache.misses == misses + 1 and [u["user_external_id"] for u in filtered.json()["users"]] == ["alice"]


def _once_changed(client, params, headers, etag: str, within: float = 3.0):
    """The first answer whose ETag differs from ``etag`` (the version is re-read in the background once stale,
    so the request that finds it stale still gets the cached answer); fails after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        answer = client.get(CONSUMPTION, params=params, headers={**headers, "If-None-Match": etag})
        if answer.status_code == 200:
            return answer
        assert answer.status_code == 304 and time.monotonic() < deadline, "the publish was not served in time"
        time.sleep(0.05)


def test_a_publish_is_served_within_the_version_interval(client, keys, db):
    params = {"workspace_id": "acme", "days_ahead": 30}
    before = client.get(CONSUMPTION, params=params, headers=keys["acme"])
    assert before.json()["as_of_date"] == AS_OF.isoformat()
    assert client.get(CONSUMPTION, params=params, headers=keys["acme"]).headers["x-cache"] == "hit"

    new_as_of = AS_OF + timedelta(days=1)
    published = time.monotonic()
    _republish(db, new_as_of, factor=2.0)  # a new nightly run: new rows
    after = _once_changed(client, params, keys["acme"], before.headers["etag"])
    assert time.monotonic() - published < VERSION_SECONDS + 2.0
    assert after.json()["as_of_date"] == new_as_of.isoformat() and after.json()["model_version"] == "ets-v4"
    assert after.json()["predictions"][0]["predicted_value"] == pytest.approx(202.0)

    _republish(db, new_as_of, factor=3.0)  # the same date again: upserted values, no new rows
    rerun = _once_changed(client, params, keys["acme"], after.headers["etag"])
    assert rerun.json()["predictions"][0]["predicted_value"] == pytest.approx(303.0)


def test_user_set_tables_move_the_version(client, db):
    cache: ResponseCache = client.app.state.response_cache
    start = cache.data_version.read()
    set_capacity(db, "acme", {"calls": 10.0})  # pae capacity set
    added = cache.data_version.read()
    clear_capacity(db, "acme")  # pae capacity clear
    removed = cache.data_version.read()
    assert added != start and removed != added  # a removal moves it too (row count)


def test_no_answer_crosses_keys(client, keys, db):
    params = {"workspace_id": "acme"}
    mine = client.get(CHURN, params=params, headers=keys["acme"])
    assert mine.status_code == 200 and "alice" in mine.text
    for headers in (keys["globex"], {**keys["globex"], "If-None-Match": mine.headers["etag"]}):
        theirs = client.get(CHURN, params=params, headers=headers)
        assert theirs.status_code == 403 and "alice" not in theirs.text and "etag" not in theirs.headers
    for headers in ({}, {"If-None-Match": mine.headers["etag"]}, {"X-API-Key": "pae_" + "A" * 43}):
        anonymous = client.get(CHURN, params=params, headers=headers)
        assert anonymous.status_code == 401 and "alice" not in anonymous.text
    own = client.get(CHURN, params={"workspace_id": "globex"}, headers=keys["globex"])
    assert own.status_code == 200 and "eve" in own.text and "alice" not in own.text


def test_revoked_key_stops_within_the_key_interval(db_url, tmp_path, db, keys):
    with make_client(db_url, tmp_path, api_key_cache_seconds=0.5) as client:
        params = {"workspace_id": "acme"}
        assert client.get(CHURN, params=params, headers=keys["acme"]).status_code == 200
        with db.connect() as conn:
            key_id = conn.execute(sa.text("select id from analytics.api_keys where name = 'key-acme'")).scalar_one()
        assert revoke_api_key(db, str(key_id))
        time.sleep(0.6)
        revoked = client.get(CHURN, params=params, headers=keys["acme"])  # the answer is still cached
        assert revoked.status_code == 401 and revoked.json()["detail"] == "API key revoked"


def test_cache_off_still_sends_etags(db_url, tmp_path, db, keys):
    with make_client(db_url, tmp_path, api_response_cache=False) as client:
        first = client.get(CHURN, params={"workspace_id": "acme"}, headers=keys["acme"])
        again = client.get(CHURN, params={"workspace_id": "acme"},
                           headers={**keys["acme"], "If-None-Match": first.headers["etag"]})
        assert again.status_code == 304
        cache = client.app.state.response_cache
        assert cache.hits == 0 and cache.misses == 2 and cache.stats()["entries"] == 0


def test_bodies_are_encoded_with_orjson(client, keys, monkeypatch):
    calls = []

    class CountingOrjson:
        OPT_NON_STR_KEYS = orjson.OPT_NON_STR_KEYS
        OPT_SERIALIZE_NUMPY = orjson.OPT_SERIALIZE_NUMPY

        @staticmethod
        def dumps(content, option=None):
            calls.append(type(content).__name__)
            return orjson.dumps(content, option=option)

    monkeypatch.setattr(cache_module, "orjson", CountingOrjson)
    cached = client.get(CONSUMPTION, params={"workspace_id": "acme"}, headers=keys["acme"])  # cached route
    assert cached.status_code == 200 and len(calls) == 1
    listed = client.get("/api/analytics/workspaces", headers=keys["acme"])  # any other route: the app's default
    assert listed.status_code == 200 and len(calls) == 2
    assert listed.json()["workspaces"][0]["external_id"] == "acme"


def test_stale_reads_are_not_stored_and_memory_is_bounded(engine, tmp_path):
    cache = ResponseCache(engine, Settings(database_url="postgresql://unused", api_cache_max_mb=1))
    cache._version = "v2"
    cache._put(("old",), CachedBody(b"x", '"x"'), version="v1")  # computed under a version that moved
    assert cache._get(("old",)) is None
    body = b"y" * 400_000
    for i in range(4):
        cache._put((i,), CachedBody(body, '"y"'), version="v2")
    assert cache.stats()["bytes"] <= 1024 * 1024 and cache._get((0,)) is None and cache._get((3,)) is not None


def test_if_none_match_parsing():
    assert etag_matches('"a", W/"b"', '"b"') and etag_matches("*", '"b"')
    assert not etag_matches(None, '"b"') and not etag_matches('"bb"', '"b"') and not etag_matches("", '"b"')


def test_concurrent_misses_compute_once_and_share_errors(engine):
    cache = ResponseCache(engine, Settings(database_url="postgresql://unused"))
    calls = []

    async def compute():
        calls.append(1)
        await asyncio.sleep(0.05)
        return {"status": "ok"}

    async def failing():
        calls.append(1)
        await asyncio.sleep(0.05)
        raise NoPredictionsError("nothing yet")

    async def burst(make, path: str):
        cache.data_version._value, cache.data_version._expires = "v", time.monotonic() + 60  # no round trip
        scope = {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}
        return await asyncio.gather(*(cache.respond(Request(scope), Liveness, "acme", {}, make) for _ in range(5)),
                                    return_exceptions=True)

    answers = asyncio.run(burst(compute, "/a"))
    assert len(calls) == 1 and {a.body for a in answers} == {b'{"status":"ok"}'} and cache.hits == 4
    errors = asyncio.run(burst(failing, "/b"))
    assert len(calls) == 2 and all(isinstance(e, NoPredictionsError) for e in errors)
    asyncio.run(burst(failing, "/b"))
    assert len(calls) == 3 and not cache._inflight  # an error is not cached


def test_what_if_reads_are_kept_until_a_publish(client, keys, db):
    cache: ResponseCache = client.app.state.response_cache
    service = client.app.state.service
    body = {"workspace_id": "acme", "base_scenario": "likely", "adjustments": [], "metrics": ["credits"],
            "horizon_days": 14}
    first = client.post(WHAT_IF, json=body, headers=keys["acme"])
    assert first.status_code == 200, first.text
    assert service._what_if_reads._entries and service.data_version is cache.data_version  # one shared version
    again = client.post(WHAT_IF, json={**body, "adjustments": [{"type": "usage_change", "percent": 10}]},
                        headers=keys["acme"])
    assert again.status_code == 200 and len(service._what_if_reads._entries) == 1  # the same stored reads

    new_as_of = AS_OF + timedelta(days=1)
    _republish(db, new_as_of, factor=2.0)
    time.sleep(VERSION_SECONDS + 0.1)  # the what-if reads the version itself, in its thread, once stale
    after = client.post(WHAT_IF, json=body, headers=keys["acme"])
    assert after.status_code == 200 and new_as_of.isoformat() in after.text and after.json() != first.json()


@pytest.mark.slow
def test_pae_serve_runs_several_workers(db_url, keys):
    port = 18000 + os.getpid() % 1000
    env = {**os.environ, "DATABASE_URL": db_url, "PAE_API_KEY_PEPPER": PEPPER, "OMP_NUM_THREADS": "1"}
    pae = str(Path(sys.executable).with_name("pae"))
    proc = subprocess.Popen([pae, "serve", "--workers", "2", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "pae serve did not answer in time"
                time.sleep(0.5)
        answer = httpx.get(f"http://127.0.0.1:{port}{CONSUMPTION}", params={"workspace_id": "acme"},
                           headers=keys["acme"], timeout=30)
        assert answer.status_code == 200 and answer.headers["etag"]
        assert answer.json()["workspace"]["external_id"] == "acme"
        workers = [p for p in psutil.Process(proc.pid).children(recursive=True)
                   if "spawn_main" in " ".join(p.cmdline())]
        assert len(workers) == 2
    finally:
        proc.terminate()
        proc.wait(timeout=30)
