"""Routes of the dashboard on the api: the page, its static files and its JSON state."""

from __future__ import annotations

from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from wagerlab.platform.api.context import context, require_admin
from wagerlab.platform.dashboard.state import cache_state, read_database_state, read_monitors, read_paused
from wagerlab.platform.db import now_ms

STATIC_DIR = Path(__file__).resolve().parent / "static"
POLL_INTERVAL_MS = 1000
"""How often the page requests `/dashboard/state`; sent to the page with each state."""


async def page(_request: Request) -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})


async def state(request: Request) -> JSONResponse:
    """Return one snapshot for the page; needs the admin token, because alerts name users."""
    require_admin(request)
    ctx = context(request)
    snapshot = await run_in_threadpool(read_database_state, ctx.engine)
    snapshot["monitors"] = await read_monitors(f"http://{ctx.config.host}:{ctx.config.monitors_port}/health")
    snapshot["cache"] = cache_state(ctx.cache.stats.to_json())
    snapshot["paused"] = await read_paused(ctx.pause)
    snapshot["time"] = now_ms()
    snapshot["poll_interval_ms"] = POLL_INTERVAL_MS
    return JSONResponse(snapshot, headers={"Cache-Control": "no-store"})


routes: list[BaseRoute] = [
    Route("/dashboard", page, methods=["GET"]),
    Route("/dashboard/state", state, methods=["GET"]),
    Mount("/dashboard/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static"),
]
