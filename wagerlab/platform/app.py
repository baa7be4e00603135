"""Build the api and chainapi Starlette apps from a PlatformConfig, and run them with uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from eth_account import Account
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from web3 import AsyncHTTPProvider, AsyncWeb3

from wagerlab.logs import RequestIdMiddleware
from wagerlab.platform import api, chainapi, dashboard
from wagerlab.platform.api.chainapi_client import ChainapiClient
from wagerlab.platform.api.pause import ChainPauseState, NeverPaused
from wagerlab.platform.auth import Passwords
from wagerlab.platform.cache import PlatformCache
from wagerlab.platform.config import PlatformConfig
from wagerlab.platform.db import make_engine, migrate
from wagerlab.platform.errors import PlatformError
from wagerlab.platform.metrics import AlertCollector, CacheCollector, ChainTransactionCollector, MetricsMiddleware, ServiceMetrics
from wagerlab.platform.quotes import ChainClock, Clock

logger = logging.getLogger(__name__)

CHAINAPI_TIMEOUT_SECONDS = 30.0

HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed"}


async def _platform_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PlatformError)
    level = logging.WARNING if exc.status_code >= 500 else logging.INFO
    logger.log(level, "%s %s -> %s %s: %s", request.method, request.url.path, exc.status_code, exc.code, exc.detail)
    return JSONResponse(exc.to_json(), status_code=exc.status_code)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = HTTP_ERROR_CODES.get(exc.status_code, "http_error")
    detail = f"{request.method} {request.url.path}: {exc.detail}"
    return JSONResponse({"error": code, "detail": detail, "field": None}, status_code=exc.status_code)


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Return 503 when the database is locked past its busy timeout, times out or drops the connection."""
    assert isinstance(exc, OperationalError)
    logger.error("%s %s failed on the database: %s", request.method, request.url.path, exc.orig, exc_info=exc)
    detail = f"the database is busy or unreachable ({type(exc.orig).__name__}: {exc.orig}); try again in a few seconds"
    return JSONResponse({"error": "service_unavailable", "detail": detail, "field": None}, status_code=503)


async def _cache_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Return 503 when Redis cannot be reached on a path that has no fallback without it."""
    logger.error("%s %s failed on Redis: %s", request.method, request.url.path, exc)
    detail = f"the cache is unreachable ({type(exc).__name__}: {exc}); try again in a few seconds"
    return JSONResponse({"error": "service_unavailable", "detail": detail, "field": None}, status_code=503)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    body = {"error": "internal_error", "detail": f"internal error: {type(exc).__name__}; see the service log", "field": None}
    return JSONResponse(body, status_code=500)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    PlatformError: _platform_error,
    HTTPException: _http_error,
    OperationalError: _database_unavailable,
    RedisConnectionError: _cache_unavailable,
    RedisTimeoutError: _cache_unavailable,
    Exception: _unexpected_error,
}


def build_api_app(
    config: PlatformConfig,
    *,
    engine: Engine | None = None,
    cache: PlatformCache | None = None,
    chainapi_client: ChainapiClient | None = None,
    clock: Clock | None = None,
) -> Starlette:
    """Return the REST API app; tests pass their own engine, cache, chainapi client or clock.

    The default clock reads the latest block from `config.rpc_url`.
    """
    engine = engine or make_engine(config.db_url)
    migrate(engine)
    owns_cache = cache is None
    cache = cache or PlatformCache.from_config(config)
    owns_client = chainapi_client is None
    client = chainapi_client or ChainapiClient(
        httpx.AsyncClient(base_url=config.chainapi_url, timeout=CHAINAPI_TIMEOUT_SECONDS)
    )
    context = api.ApiContext(
        config=config,
        engine=engine,
        cache=cache,
        chainapi=client,
        passwords=Passwords(),
        odds_signer=Account.from_key(config.odds_signer_key),
        clock=clock or ChainClock(AsyncWeb3(AsyncHTTPProvider(config.rpc_url))),
        # A test that brings its own clock has no node to read paused() from.
        pause=NeverPaused() if clock else ChainPauseState(AsyncWeb3(AsyncHTTPProvider(config.rpc_url)), config.deployment.sportsbook),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        logger.info("api started")
        try:
            yield
        finally:
            if owns_client:
                await client.http.aclose()
            if owns_cache:
                await cache.close()
            logger.info("api stopped")

    metrics = ServiceMetrics("api")
    metrics.register(CacheCollector(lambda: cache.stats.to_json()))
    metrics.register(AlertCollector(engine))
    app = Starlette(
        routes=[*api.routes, *dashboard.routes, metrics.route()],
        middleware=[
            Middleware(RequestIdMiddleware, service="api"),
            Middleware(MetricsMiddleware, metrics=metrics),
            Middleware(api.RequestCounter),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.api = context
    return app


def build_chainapi_app(config: PlatformConfig, *, engine: Engine | None = None, w3: AsyncWeb3 | None = None) -> Starlette:
    """Return the chainapi app; its lifespan runs the receipt tracker in the background."""
    engine = engine or make_engine(config.db_url)
    migrate(engine)
    w3 = w3 or AsyncWeb3(AsyncHTTPProvider(config.rpc_url))
    context = chainapi.ChainapiContext.create(config, engine, w3)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tracker = asyncio.create_task(context.tracker.run(), name="receipt-tracker")
        try:
            yield
        finally:
            tracker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tracker
            logger.info("chainapi stopped")

    metrics = ServiceMetrics("chainapi")
    metrics.register(ChainTransactionCollector(engine))
    app = Starlette(
        routes=[*chainapi.routes, metrics.route()],
        middleware=[Middleware(RequestIdMiddleware, service="chainapi"), Middleware(MetricsMiddleware, metrics=metrics)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.chainapi = context
    return app


def _serve(name: str, app: Starlette, host: str, port: int) -> None:
    """Run uvicorn until SIGINT or SIGTERM; the app's lifespan logs the stop.

    uvicorn 0.55 raises a captured signal again once it has shut down, so with the default
    SIGTERM handler the process ends inside `run()`.
    """
    logger.info("%s starting on http://%s:%s", name, host, port)
    uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info", access_log=False)).run()


def run_api(config: PlatformConfig) -> None:
    """Serve the REST API on config.host and config.api_port until interrupted."""
    _serve("api", build_api_app(config), config.host, config.api_port)


def run_chainapi(config: PlatformConfig) -> None:
    """Serve chainapi on config.host and config.chainapi_port until interrupted."""
    _serve("chainapi", build_chainapi_app(config), config.host, config.chainapi_port)
