"""Run the three monitors in one process and serve their health over HTTP.

`run_monitors(config)` is what `wagerlab serve monitors --config FILE` calls. It blocks
until SIGINT or SIGTERM. `GET /health` on `config.host:config.monitors_port` returns every
monitor's health record, with status 200 when each monitor is live (or backfilling, or
waiting for another monitor) and 503 otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Iterator, Sequence
from typing import Any

import uvicorn
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from wagerlab.platform.alerts import raise_alert, set_webhook_url
from wagerlab.platform.config import PlatformConfig
from wagerlab.platform.db import AlertSeverity, make_engine, migrate
from wagerlab.platform.metrics import MetricsMiddleware, MonitorCollector, ServiceMetrics
from wagerlab.platform.monitors.base import LogMonitor
from wagerlab.platform.monitors.bets import BetsMonitor
from wagerlab.platform.monitors.errors import HealthServerError
from wagerlab.platform.monitors.deposits import DepositsMonitor
from wagerlab.platform.monitors.follow import Backoff, sleep_unless_stopped
from wagerlab.platform.monitors.health import HEALTHY_STATES, MonitorState
from wagerlab.platform.monitors.settlement import SettlementMonitor

logger = logging.getLogger(__name__)


def build_monitors(config: PlatformConfig, engine: Engine, **options: float) -> list[LogMonitor]:
    """Create the deposits, bets and settlement monitors; `options` go to `LogMonitor`."""
    return [DepositsMonitor(config, engine, **options), BetsMonitor(config, engine, **options), SettlementMonitor(config, engine, **options)]


class Supervisor:
    """Keeps each monitor running as an asyncio task, restarts one that crashes, and alerts on sustained failure.

    With an `engine`, a monitor that stays out of the healthy states for `alert_after`
    seconds raises one `monitor_down` alert, and a `monitor_recovered` alert once it is
    healthy again.
    """

    def __init__(
        self,
        monitors: Sequence[LogMonitor],
        *,
        restart_initial: float = 1.0,
        restart_max: float = 30.0,
        engine: Engine | None = None,
        alert_after: float = 30.0,
        check_interval: float = 1.0,
    ) -> None:
        self.monitors = list(monitors)
        self.restart_initial = restart_initial
        self.restart_max = restart_max
        self.engine = engine
        self.alert_after = alert_after
        self.check_interval = check_interval
        self._alerted: set[str] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Run every monitor until `stop` is set."""
        tasks = [asyncio.create_task(self._keep_running(monitor, stop), name=f"monitor-{monitor.name}") for monitor in self.monitors]
        if self.engine is not None:
            tasks.append(asyncio.create_task(self._watch(stop, self.engine), name="monitor-watch"))
        await asyncio.gather(*tasks)

    async def _watch(self, stop: asyncio.Event, engine: Engine) -> None:
        while not stop.is_set():
            await sleep_unless_stopped(stop, self.check_interval)
            for monitor in self.monitors:
                await self._check(monitor, engine)

    async def _check(self, monitor: LogMonitor, engine: Engine) -> None:
        health = monitor.health
        if health.state in HEALTHY_STATES or health.state is MonitorState.STOPPED:
            health.unhealthy_since = None
            if monitor.name in self._alerted:
                self._alerted.discard(monitor.name)
                detail = f"monitor {monitor.name} is {health.state.value} again at cursor {(health.cursor_block, health.cursor_log_index)}"
                await asyncio.to_thread(raise_alert, engine, "monitor_recovered", AlertSeverity.INFO, monitor.name, detail)
            return

        now = time.time()
        if health.unhealthy_since is None:
            health.unhealthy_since = now
        down_for = now - health.unhealthy_since
        if down_for >= self.alert_after and monitor.name not in self._alerted:
            self._alerted.add(monitor.name)
            detail = (
                f"monitor {monitor.name} has been {health.state.value} for {down_for:.0f} s "
                f"with {health.restarts} restart(s); last error: {health.last_error}"
            )
            await asyncio.to_thread(raise_alert, engine, "monitor_down", AlertSeverity.CRITICAL, monitor.name, detail)

    async def _keep_running(self, monitor: LogMonitor, stop: asyncio.Event) -> None:
        # `LogMonitor.run` handles network and database errors itself; an exception that
        # escapes it is a bug, so the monitor restarts from its stored cursor.
        backoff = Backoff(self.restart_initial, self.restart_max)
        while not stop.is_set():
            try:
                await monitor.run(stop)
            except Exception as err:
                delay = backoff.next_delay()
                monitor.health.record_error(err)
                monitor.health.restarts += 1
                logger.error("monitor %s crashed: %s; restarting in %.1f s", monitor.name, err, delay, exc_info=err)
                await sleep_unless_stopped(stop, delay)

    def health(self) -> dict[str, Any]:
        records = {monitor.name: monitor.health.to_json() for monitor in self.monitors}
        healthy = all(monitor.health.state in HEALTHY_STATES for monitor in self.monitors)
        return {"status": "ok" if healthy else "degraded", "monitors": records}


def build_health_app(supervisor: Supervisor) -> Starlette:
    async def health(_request: Request) -> JSONResponse:
        body = supervisor.health()
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    metrics = ServiceMetrics("monitors")
    metrics.register(MonitorCollector(supervisor.health))
    return Starlette(
        routes=[Route("/health", health, methods=["GET"]), metrics.route()],
        middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
    )


def bind_health_socket(host: str, port: int) -> socket.socket:
    """Bind the health server's socket up front, so a busy port fails with a clear error."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise HealthServerError(f"cannot bind the monitors health server to {host}:{port}: {err}; set monitors_port in the platform config to a free port") from err
    return sock


class _HealthServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to `run_monitors`."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_monitors(config: PlatformConfig, stop: asyncio.Event, *, engine: Engine | None = None, **options: float) -> Supervisor:
    """Run the monitors and the health server until `stop` is set; return the supervisor."""
    engine = engine or make_engine(config.db_url)
    migrate(engine)
    set_webhook_url(config.alert_webhook_url)
    supervisor = Supervisor(build_monitors(config, engine, **options), engine=engine, alert_after=config.monitor_alert_after_seconds)
    health_socket = bind_health_socket(config.host, config.monitors_port)
    host, port = health_socket.getsockname()[:2]
    server = _HealthServer(uvicorn.Config(build_health_app(supervisor), log_level="warning", lifespan="off"))
    server_task = asyncio.create_task(server.serve(sockets=[health_socket]), name="monitors-health")
    logger.info("monitors starting; health at http://%s:%s/health", host, port)
    reconciler = _start_reconciler(config, engine, stop)

    try:
        await supervisor.run(stop)
    finally:
        server.should_exit = True
        await server_task
        if reconciler is not None:
            await reconciler
        logger.info("monitors stopped")
    return supervisor


def _start_reconciler(config: PlatformConfig, engine: Engine, stop: asyncio.Event) -> asyncio.Task[None] | None:
    if config.reconcile_interval_seconds <= 0:
        logger.info("scheduled reconciliation is off (reconcile_interval_seconds is %s)", config.reconcile_interval_seconds)
        return None
    # Imported here because wagerlab.platform.reconcile imports this package.
    from wagerlab.platform.reconcile import run_reconciler

    return asyncio.create_task(run_reconciler(engine, config, stop, config.reconcile_interval_seconds), name="reconciler")


def run_monitors(config: PlatformConfig) -> None:
    """Run the deposits, bets and settlement monitors until SIGINT or SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, _request_stop, stop, signum)
        await serve_monitors(config, stop)

    asyncio.run(main())


def _request_stop(stop: asyncio.Event, signum: int) -> None:
    logger.info("monitors received %s; stopping", signal.Signals(signum).name)
    stop.set()
