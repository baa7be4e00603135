"""Assemble the gateway app from a PlatformConfig, and serve it with uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import fakeredis
import httpx
import redis.asyncio
import uvicorn
from sqlalchemy.engine import Engine
from sqlalchemy.engine.url import make_url
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from wagerlab.logs import RequestIdMiddleware
from wagerlab.platform.alerts import raise_alert
from wagerlab.platform.app import EXCEPTION_HANDLERS
from wagerlab.platform.config import PlatformConfig
from wagerlab.platform.db import AlertSeverity, make_engine, migrate
from wagerlab.platform.gateway import admin, proxy
from wagerlab.platform.gateway.client_ip import parse_trusted_proxies
from wagerlab.platform.gateway.context import ALERT_SOURCE, GatewayContext, Upstream
from wagerlab.platform.gateway.counters import GatewayRedis, WindowCounters
from wagerlab.platform.gateway.forensics import ForensicLog
from wagerlab.platform.gateway.guard import AlertSink, LoginGuard, RequestGuard
from wagerlab.platform.gateway.limits import GatewayLimits
from wagerlab.platform.gateway.retry import RetryJob, RetryQueue
from wagerlab.platform.metrics import MetricsMiddleware, ServiceMetrics
from wagerlab.platform.security import ContractMonitor, MonitorSettings

logger = logging.getLogger(__name__)

UPSTREAM_TIMEOUT_SECONDS = 60.0
UPSTREAM_POOL_SIZE = 128
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def forensic_log_path(config: PlatformConfig) -> Path:
    """Return the configured log path, or `forensics.jsonl` beside a SQLite database, or in the working directory."""
    if config.forensic_log_path is not None:
        return Path(config.forensic_log_path)
    url = make_url(config.db_url)
    if url.get_backend_name() == "sqlite" and url.database:
        return Path(url.database).parent / "forensics.jsonl"
    return Path("forensics.jsonl")


def _upstream_client(base_url: str, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=UPSTREAM_POOL_SIZE, max_keepalive_connections=UPSTREAM_POOL_SIZE, keepalive_expiry=2.0)
    return httpx.AsyncClient(base_url=base_url, timeout=UPSTREAM_TIMEOUT_SECONDS, limits=limits, transport=transport)


def _redis(config: PlatformConfig) -> GatewayRedis:
    if config.redis_url is None:
        logger.info("gateway counters: embedded fakeredis")
        return fakeredis.FakeAsyncRedis()
    logger.info("gateway counters: redis at %s", config.redis_url)
    return redis.asyncio.from_url(config.redis_url)


def build_gateway_app(
    config: PlatformConfig,
    *,
    engine: Engine | None = None,
    redis_client: GatewayRedis | None = None,
    key_prefix: str = "gw:",
    transport: httpx.AsyncBaseTransport | None = None,
    contract_monitor: bool = True,
) -> Starlette:
    """Return the gateway app; tests pass their own engine, Redis client or upstream transport.

    The gateway stores alerts and queued retries. Without an `engine` it migrates the
    database at `config.db_url` first, as the api does. Its lifespan resumes the retries an
    earlier gateway process left queued and, unless `contract_monitor` is False, runs the
    contract monitor against `config.rpc_url`.
    """
    if engine is None:
        engine = make_engine(config.db_url)
        migrate(engine)
    limits = GatewayLimits.from_overrides(config.security)
    counters = WindowCounters(redis_client or _redis(config), key_prefix)

    async def alert(rule: str, severity: AlertSeverity, detail: str) -> None:
        await asyncio.to_thread(raise_alert, engine, rule, severity, ALERT_SOURCE, detail)

    requests = RequestGuard(counters, limits, alert)
    upstreams = [
        Upstream("api", "/api", _upstream_client(config.api_url, transport)),
        Upstream("chainapi", "/transactions", _upstream_client(config.chainapi_url, transport), admin_only=True),
    ]

    async def send(job: RetryJob) -> httpx.Response:
        return await proxy.forward(upstreams[0], job.method, job.path, "", job.headers, job.body)

    context = GatewayContext(
        config=config,
        engine=engine,
        limits=limits,
        trusted_proxies=parse_trusted_proxies(config.trusted_proxies),
        counters=counters,
        requests=requests,
        logins=LoginGuard(counters, limits, requests, alert),
        forensics=ForensicLog(forensic_log_path(config)),
        upstreams=upstreams,
        retries=RetryQueue(send, limits, engine),
        monitor=_monitor(config, engine, alert, limits) if contract_monitor else None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        resumed = await context.retries.resume()
        logger.info("gateway started; forensic log %s; resumed %d queued retries", context.forensics.path, resumed)
        monitor = asyncio.create_task(context.monitor.run(), name="contract-monitor") if context.monitor else None
        try:
            yield
        finally:
            if monitor is not None:
                monitor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await monitor
            await context.retries.close()
            for upstream in upstreams:
                await upstream.client.aclose()
            if redis_client is None:
                await counters.redis.aclose()
            logger.info("gateway stopped")

    # The gateway generates the request id that the api, chainapi and monitors log.
    metrics = ServiceMetrics("gateway")
    routes = [*admin.routes, metrics.route(), Route("/{path:path}", proxy.handle, methods=METHODS)]
    middleware = [Middleware(RequestIdMiddleware, service="gateway"), Middleware(MetricsMiddleware, metrics=metrics)]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)
    app.state.gateway = context
    return app


def _monitor(config: PlatformConfig, engine: Engine, alert: AlertSink, limits: GatewayLimits) -> ContractMonitor:
    settings = MonitorSettings(
        poll_ms=limits.monitor_poll_ms,
        gas_warmup_calls=limits.gas_warmup_calls,
        gas_factor_percent=limits.gas_factor_percent,
        revert_burst=limits.revert_burst,
        revert_window_blocks=limits.revert_window_blocks,
        auto_pause=limits.auto_pause == 1,
    )
    return ContractMonitor(config, engine, alert, settings)


def run_gateway(config: PlatformConfig, *, contract_monitor: bool = True) -> None:
    """Serve the gateway on config.host and config.gateway_port until interrupted."""
    app = build_gateway_app(config, contract_monitor=contract_monitor)
    logger.info("gateway starting on http://%s:%s", config.host, config.gateway_port)
    uvicorn.Server(uvicorn.Config(app, host=config.host, port=config.gateway_port, log_level="info", access_log=False)).run()
