"""The dashboard: the built bundle (``web/dist``, ``make web``) served at ``/`` beside ``/api/...``.

``/`` answers ``index.html`` (never cached, so a new build shows at once, with a Content-Security-Policy that
allows only this origin); ``/assets/...`` the hashed files Vite wrote (cached for a year, their names change
with their content). Without a build, ``/`` says how to make one instead of failing. Nothing here touches the
database; the page calls the API with the key the user enters.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from core.settings import REPO_ROOT

WEB_DIST = REPO_ROOT / "web" / "dist"

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
PAGE_HEADERS = {"Cache-Control": "no-cache", "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer"}

NOT_BUILT = """<!doctype html><html lang="en"><meta charset="utf-8"><title>Dashboard not built</title>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 4em auto">
<h1>The dashboard is not built</h1>
<p>Build it with <code>make web</code> (or <code>make run</code>, which builds it when missing), then reload.
The API itself is served: see <a href="/docs">/docs</a>.</p></body></html>"""


class _HashedAssets(StaticFiles):
    """Vite's hashed assets: immutable, so browsers keep them for a year."""

    async def check_config(self) -> None:
        # No build yet: each file is a 404 (lookup finds nothing) rather than a 500 from the missing folder.
        if self.directory is not None and Path(self.directory).is_dir():
            await super().check_config()

    async def get_response(self, path: str, scope: Scope):
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
            response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def mount_dashboard(app: FastAPI, dist: Path = WEB_DIST) -> None:
    """Serve the bundle in ``dist`` at ``/`` and ``/assets``; ``/`` explains how to build it when missing.

    Args:
        app: The API app; its ``/api``, ``/docs`` and health routes are unchanged.
        dist: Vite's output folder (``index.html`` and ``assets/``).
    """
    index = dist / "index.html"

    @app.get("/", include_in_schema=False)
    async def dashboard():
        if index.is_file():
            return FileResponse(index, media_type="text/html", headers=PAGE_HEADERS)
        return HTMLResponse(NOT_BUILT, status_code=503, headers={"Cache-Control": "no-store"})

    # Mounted whether or not a build exists yet: a missing folder answers 404 per file instead of failing.
    app.mount("/assets", _HashedAssets(directory=dist / "assets", check_dir=False), name="dashboard-assets")
