"""Response cache for the published predictions, with ``ETag``/``304`` and orjson bodies.

Predictions change when a nightly run publishes, so a GET answer is kept in memory (per worker process) under
(route, workspace UUID, validated query parameters) until the **data version** moves (``services/data_version.py``:
re-read in the background once older than ``api_cache_version_seconds``, 1 s, so a publish shows within about a
second and no request waits on that query). When it moves
the whole cache is dropped; an answer computed from reads that started under an older version is not stored.
Concurrent requests for a missing answer compute it once. Memory is bounded (``api_cache_max_mb`` per worker,
least recently used first).

Authorisation is not cached here: routes reach ``respond`` only after ``auth`` has checked the key and its scope
for this request, and entries are per workspace, never per key (answers do not depend on the key). Every answer
carries a strong ``ETag`` (a hash of the body), ``Cache-Control: private, max-age=...``, ``Vary: X-API-Key`` and
``X-Cache: hit|miss`` (was it computed for this request); a matching ``If-None-Match`` gets ``304`` with no body.
"""
from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any, Awaitable, Callable

import orjson
from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter
from sqlalchemy.engine import Engine

from core.ids import entity_uuid
from core.settings import Settings
from services.data_version import DataVersion


def dump_json(content: Any) -> bytes:
    """orjson for JSON-ready content (what FastAPI hands a response class after ``response_model``)."""
    return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)


class OrjsonResponse(JSONResponse):
    """The app's default response class: bodies encoded with orjson.

    FastAPI still validates and serialises the route's return value with its ``response_model`` (pydantic's
    JSON mode) and documents it in OpenAPI; only the final encoding changes.
    """

    def render(self, content: Any) -> bytes:
        return dump_json(content)


@dataclass(frozen=True)
class CachedBody:
    body: bytes
    etag: str


def _quietly(task: asyncio.Future) -> None:
    """A background version read that failed (the database is down): the next stale read tries again."""
    if not task.cancelled():
        task.exception()


def etag_of(body: bytes) -> str:
    """A strong entity tag: a 128-bit hash of the exact body."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """``If-None-Match`` against our tag (weak comparison, as RFC 9110 asks for this header; ``*`` matches)."""
    if not if_none_match:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)


class ResponseCache:
    """The per-process cache of GET answers (see the module doc).

    Args:
        engine: The API's read-only engine (for the data version).
        settings: ``api_response_cache`` (off: every request is computed, headers and 304 still apply),
            ``api_cache_version_seconds``, ``api_cache_max_mb``, ``api_cache_max_age_seconds``.
        data_version: Shared with the service (what-if reads); by default one of its own.
    """

    def __init__(self, engine: Engine, settings: Settings, data_version: DataVersion | None = None):
        self.data_version = data_version or DataVersion(engine, settings.api_cache_version_seconds)
        self.enabled = settings.api_response_cache
        self.max_bytes = settings.api_cache_max_mb * 1024 * 1024
        self.cache_control = f"private, max-age={settings.api_cache_max_age_seconds}"
        self._entries: OrderedDict[tuple, CachedBody] = OrderedDict()
        self._bytes = 0
        self._version: str | None = None
        self._refresh: asyncio.Future | None = None
        self._adapters: dict[Any, TypeAdapter] = {}
        self._inflight: dict[tuple, tuple[str, asyncio.Future]] = {}
        self.hits = 0
        self.misses = 0

    async def version(self) -> str:
        """The data version; when it moved, the cache is dropped.

        From memory while fresh. Once stale it is re-read in the background and requests keep the one they have
        until the new one is in, so no request waits on that query (the first request, and every one when
        ``api_cache_version_seconds`` is 0, read it themselves).
        """
        version = self.data_version.peek()
        if version is None:
            if self._version is None or self.data_version.seconds == 0:
                version = await asyncio.to_thread(self.data_version.current)
            else:
                loop = asyncio.get_running_loop()
                if self._refresh is None or self._refresh.done() or self._refresh.get_loop() is not loop:
                    self._refresh = asyncio.ensure_future(asyncio.to_thread(self.data_version.current))
                    self._refresh.add_done_callback(_quietly)
                return self._version
        if version != self._version:
            self.clear()
            self._version = version
        return version

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def _get(self, key: tuple) -> CachedBody | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def _put(self, key: tuple, entry: CachedBody, version: str) -> None:
        if version != self._version or len(entry.body) > self.max_bytes:
            return  # read under a version that has since moved: not stored
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)
        self._entries[key] = entry
        self._bytes += len(entry.body)
        while self._bytes > self.max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= len(dropped.body)

    def _render(self, model: Any, content: Any) -> bytes:
        """Validate with the route's response model and encode (pydantic JSON mode, then orjson)."""
        adapter = self._adapters.get(model)
        if adapter is None:
            adapter = self._adapters[model] = TypeAdapter(model)
        return dump_json(adapter.dump_python(adapter.validate_python(content), mode="json"))

    def _answer(self, request: Request, entry: CachedBody, hit: bool) -> Response:
        headers = {"ETag": entry.etag, "Cache-Control": self.cache_control, "Vary": "X-API-Key",
                   "X-Cache": "hit" if hit else "miss"}
        if etag_matches(request.headers.get("if-none-match"), entry.etag):
            return Response(status_code=304, headers=headers)
        return Response(entry.body, media_type="application/json", headers=headers)

    async def respond(self, request: Request, model: Any, workspace_id: str, params: dict[str, Any],
                      compute: Callable[[], Awaitable[Any]]) -> Response:
        """The answer of an authorised GET: from the cache, or computed, validated, encoded and stored.

        Args:
            request: The request (its path and ``If-None-Match``).
            model: The route's ``response_model``; a computed answer is validated with it.
            workspace_id: The workspace as asked (UUID or external id; the key uses its UUID).
            params: The route's validated query parameters other than the workspace.
            compute: Makes the answer (the service call); its errors propagate (404s are not cached).
        """
        key = (request.url.path, str(entity_uuid("workspace", workspace_id)),
               tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items())))
        if not self.enabled:
            self.misses += 1
            body = self._render(model, await compute())
            return self._answer(request, CachedBody(body, etag_of(body)), hit=False)
        version = await self.version()
        entry = self._get(key)
        if entry is not None:
            self.hits += 1
            return self._answer(request, entry, hit=True)
        entry, computed = await self._compute_once(key, version, model, compute)
        return self._answer(request, entry, hit=not computed)

    async def _compute_once(self, key: tuple, version: str, model: Any,
                            compute: Callable[[], Awaitable[Any]]) -> tuple[CachedBody, bool]:
        """Compute a missing answer once: concurrent requests for it (a cold cache after a publish) wait for the
        first one's result, or its error, instead of each reading the database. Returns (answer, computed here)."""
        flight = self._inflight.get(key)
        if flight is not None and flight[0] == version:
            try:
                entry = await asyncio.shield(flight[1])
                self.hits += 1
                return entry, False
            except asyncio.CancelledError:
                if not flight[1].cancelled():
                    raise  # this request was cancelled, not the first one
        self.misses += 1
        future: asyncio.Future[CachedBody] = asyncio.get_running_loop().create_future()
        self._inflight[key] = (version, future)
        try:
            body = self._render(model, await compute())
            entry = CachedBody(body, etag_of(body))
            self._put(key, entry, version)
            future.set_result(entry)
            return entry, True
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        finally:
            if self._inflight.get(key, (None, None))[1] is future:
                del self._inflight[key]

    def stats(self) -> dict[str, Any]:
        return {"entries": len(self._entries), "bytes": self._bytes, "hits": self.hits, "misses": self.misses,
                "version": self._version}


NOT_MODIFIED = {304: {"description": "Not modified: `If-None-Match` matched the answer's `ETag` (no body)."}}
"""For the OpenAPI schema of cached routes."""


async def get_response_cache(request: Request) -> ResponseCache:
    return request.app.state.response_cache


ResponseCacheDep = Annotated[ResponseCache, Depends(get_response_cache)]
