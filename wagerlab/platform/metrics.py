"""Prometheus metrics of the platform services, served as text on `GET /metrics`.

Each service app owns a `ServiceMetrics` with its own registry, so several apps in one
test process do not share counters. Request counts and latencies are labelled by the
route template (`/api/bets/{bet_id}`), never the raw path, so that ids cannot grow the
number of series. Values kept elsewhere (cache counters, monitor health, rows of the
database) are read by collectors when Prometheus scrapes, not copied on every change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wagerlab.logs import route_label
from wagerlab.platform.db import Alert, ChainTransaction, read_session

logger = logging.getLogger(__name__)

LATENCY_BUCKETS_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Upper bounds of the request latency histogram. Admin requests of the api wait up to 30 s for a receipt."""

METRICS_PATH = "/metrics"


class ServiceMetrics:
    """The registry of one service, with its request counter and latency histogram."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "wagerlab_http_requests",
            "HTTP requests handled, by route template and response status.",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "wagerlab_http_request_duration_seconds",
            "Time from receiving a request to the end of its response, by route template.",
            ["service", "method", "route"],
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(self.service, method, route, str(status)).inc()
        self.latency.labels(self.service, method, route).observe(seconds)

    def register(self, collector: Collector) -> None:
        self.registry.register(collector)

    def render(self) -> bytes:
        """Return every metric in the Prometheus text format; blocks while collectors query the DB."""
        return generate_latest(self.registry)

    def route(self) -> Route:
        """Return the `GET /metrics` route serving this registry."""

        async def metrics(_request: Request) -> Response:
            body = await run_in_threadpool(self.render)
            return Response(body, media_type=CONTENT_TYPE_LATEST)

        return Route(METRICS_PATH, metrics, methods=["GET"])


class MetricsMiddleware:
    """ASGI middleware that counts and times every HTTP request by route template."""

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_and_record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record_status)
        finally:
            self.metrics.observe(scope["method"], route_label(scope), status, time.perf_counter() - started)


class CacheCollector(Collector):
    """Odds and token cache hits and misses of the api, read from its `CacheStats`."""

    def __init__(self, read_stats: Callable[[], dict[str, Any]]) -> None:
        self.read_stats = read_stats

    def collect(self) -> Iterator[Metric]:
        stats = self.read_stats()
        hits = CounterMetricFamily("wagerlab_cache_hits", "Cache lookups served from the cache.", labels=["kind"])
        misses = CounterMetricFamily("wagerlab_cache_misses", "Cache lookups that missed.", labels=["kind"])
        hits.add_metric(["odds"], stats["hits"])
        hits.add_metric(["token"], stats["token_hits"])
        misses.add_metric(["odds"], stats["misses"])
        misses.add_metric(["token"], stats["token_misses"])
        db_reads = CounterMetricFamily("wagerlab_cache_db_reads", "Odds reads that went to the database.", value=stats["db_reads"])
        yield from (hits, misses, db_reads)


class _DatabaseCollector(Collector):
    """A collector that counts rows at scrape time; a failed query leaves its metrics out."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        try:
            families = list(self.collect_rows())
        except SQLAlchemyError as err:
            logger.warning("metrics: %s could not query the database: %s", type(self).__name__, err)
            return
        yield from families

    def collect_rows(self) -> Iterable[Metric]:
        raise NotImplementedError


class ChainTransactionCollector(_DatabaseCollector):
    """Rows of `chain_transactions` by kind and status."""

    def collect_rows(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "wagerlab_chain_transactions", "Transactions chainapi has recorded, by kind and current status.", labels=["kind", "status"]
        )
        query = select(ChainTransaction.kind, ChainTransaction.status, func.count()).group_by(ChainTransaction.kind, ChainTransaction.status)
        with read_session(self.engine) as session:
            for kind, status, count in session.exec(query):
                family.add_metric([kind, getattr(status, "value", str(status))], count)
        return [family]


class AlertCollector(_DatabaseCollector):
    """Stored alerts by rule and severity, and the time of the newest one."""

    def collect_rows(self) -> Iterable[Metric]:
        total = CounterMetricFamily("wagerlab_alerts", "Alerts stored in the alerts table, by rule and severity.", labels=["rule", "severity"])
        query = select(Alert.rule, Alert.severity, func.count()).group_by(Alert.rule, Alert.severity)
        with read_session(self.engine) as session:
            for rule, severity, count in session.exec(query):
                total.add_metric([rule, getattr(severity, "value", str(severity))], count)
            newest = session.exec(select(func.max(Alert.created_at))).one()
        families: list[Metric] = [total]
        if newest is not None:
            families.append(GaugeMetricFamily("wagerlab_alert_last_timestamp_seconds", "Unix time of the newest alert.", value=newest / 1000))
        return families


class MonitorCollector(Collector):
    """Lag, state and counters of each chain monitor, read from the supervisor's health records."""

    def __init__(self, read_health: Callable[[], dict[str, Any]]) -> None:
        self.read_health = read_health

    def collect(self) -> Iterator[Metric]:
        monitors: dict[str, dict[str, Any]] = self.read_health()["monitors"]
        lag = GaugeMetricFamily("wagerlab_monitor_lag_blocks", "Blocks the chain head is ahead of the monitor.", labels=["monitor"])
        healthy = GaugeMetricFamily("wagerlab_monitor_healthy", "1 when the monitor is live, backfilling or waiting.", labels=["monitor", "state"])
        applied = CounterMetricFamily("wagerlab_monitor_events_applied", "Chain events the monitor applied.", labels=["monitor"])
        reversed_ = CounterMetricFamily("wagerlab_monitor_events_reversed", "Applied events reversed after a reorg.", labels=["monitor"])
        restarts = CounterMetricFamily("wagerlab_monitor_restarts", "Times the supervisor restarted the monitor.", labels=["monitor"])
        for name, record in sorted(monitors.items()):
            if record["lag_blocks"] is not None:
                lag.add_metric([name], record["lag_blocks"])
            healthy.add_metric([name, record["state"]], 1 if record["state"] in {"live", "backfilling", "waiting"} else 0)
            applied.add_metric([name], record["events_applied"])
            reversed_.add_metric([name], record["events_reversed"])
            restarts.add_metric([name], record["restarts"])
        yield from (lag, healthy, applied, reversed_, restarts)


class StreamCollector(Collector):
    """Subscribers and messages of the odds stream, read from its hub's counters."""

    def __init__(self, read_stats: Callable[[], dict[str, Any]]) -> None:
        self.read_stats = read_stats

    def collect(self) -> Iterator[Metric]:
        stats = self.read_stats()
        yield GaugeMetricFamily("wagerlab_stream_subscribers", "WebSocket subscribers connected now.", value=stats["subscribers"])
        yield CounterMetricFamily("wagerlab_stream_connections", "WebSocket subscribers connected since start.", value=stats["connected_total"])
        yield CounterMetricFamily("wagerlab_stream_messages_sent", "Messages sent to subscribers.", value=stats["messages_sent"])
        dropped = CounterMetricFamily("wagerlab_stream_subscribers_dropped", "Subscribers disconnected by the hub, by reason.", labels=["reason"])
        for reason, count in sorted(stats["dropped"].items()):
            dropped.add_metric([reason], count)
        yield dropped
