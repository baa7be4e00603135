"""`GET /metrics` of the api, chainapi and monitors, scraped and parsed as Prometheus text."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_fixtures import ADMIN_TOKEN, FAST_PASSWORDS, add_market, auth, db, make_config, register_and_login  # noqa: F401
from monitor_fixtures import make_config as make_monitor_config
from monitor_fixtures import make_database
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from wagerlab.platform.alerts import raise_alert
from wagerlab.platform.db import AlertSeverity, ChainTransaction, TxStatus, write_session
from wagerlab.platform.metrics import ServiceMetrics
from wagerlab.platform.monitors import Supervisor, build_monitors
from wagerlab.platform.monitors.health import MonitorState
from wagerlab.platform.monitors.supervisor import build_health_app
from wagerlab.platform.quotes import WallClock

ALICE = "0x" + "a1" * 20
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Return every sample as {(name, labels): value}; raises on text that is not Prometheus format."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


@pytest.fixture
def api_client(db: tuple[str, Engine]) -> Iterator[TestClient]:  # noqa: F811
    from wagerlab.platform.app import build_api_app

    url, engine = db
    add_market(engine, 7, [1_800_000, 2_100_000])
    app = build_api_app(make_config(url), engine=engine, clock=WallClock())
    app.state.api.passwords = FAST_PASSWORDS
    with TestClient(app) as client:
        yield client


def test_api_requests_counted_by_route_template(api_client: TestClient) -> None:
    token = register_and_login(api_client, "alice", ALICE)
    for bet_id in (1, 2, 3):
        api_client.get(f"/api/bets/{bet_id}", headers=auth(token))

    samples = scrape(api_client)

    labels = {"service": "api", "method": "GET", "route": "/api/bets/{bet_id}", "status": "404"}
    assert value(samples, "wagerlab_http_requests_total", **labels) == 3
    assert not any("/api/bets/1" == dict(labels).get("route") for _, labels in samples)
    assert value(samples, "wagerlab_http_requests_total", service="api", method="POST", route="/api/register", status="201") == 1


def test_api_latency_histogram_counts_requests(api_client: TestClient) -> None:
    api_client.get("/api/health")
    api_client.get("/api/health")

    samples = scrape(api_client)

    route = {"service": "api", "method": "GET", "route": "/api/health"}
    assert value(samples, "wagerlab_http_request_duration_seconds_count", **route) == 2
    assert value(samples, "wagerlab_http_request_duration_seconds_bucket", **route, le="+Inf") == 2
    assert value(samples, "wagerlab_http_request_duration_seconds_sum", **route) > 0


def test_api_unmatched_path_one_label(api_client: TestClient) -> None:
    for path in ("/nope/1", "/nope/2", "/wp-admin"):
        assert api_client.get(path).status_code == 404

    samples = scrape(api_client)

    assert value(samples, "wagerlab_http_requests_total", service="api", method="GET", route="unmatched", status="404") == 3


def test_api_cache_hits_and_misses(api_client: TestClient) -> None:
    token = register_and_login(api_client, "alice", ALICE)
    for _ in range(3):
        assert api_client.get("/api/markets/7/odds", headers=auth(token)).status_code == 200

    samples = scrape(api_client)
    stats = api_client.get("/api/stats").json()

    assert value(samples, "wagerlab_cache_hits_total", kind="odds") == stats["hits"]
    assert value(samples, "wagerlab_cache_misses_total", kind="odds") == stats["misses"]
    assert stats["hits"] + stats["misses"] == 3
    assert value(samples, "wagerlab_cache_misses_total", kind="odds") >= 1
    assert value(samples, "wagerlab_cache_hits_total", kind="token") == stats["token_hits"]


def test_api_alerts_by_rule_and_severity(api_client: TestClient, db: tuple[str, Engine]) -> None:  # noqa: F811
    engine = db[1]
    raise_alert(engine, "monitor_down", AlertSeverity.CRITICAL, "supervisor", "bets monitor down")
    raise_alert(engine, "monitor_down", AlertSeverity.CRITICAL, "supervisor", "bets monitor down again")
    raise_alert(engine, "login_lockout", AlertSeverity.WARNING, "api", "alice locked out")

    samples = scrape(api_client)

    assert value(samples, "wagerlab_alerts_total", rule="monitor_down", severity="critical") == 2
    assert value(samples, "wagerlab_alerts_total", rule="login_lockout", severity="warning") == 1
    assert value(samples, "wagerlab_alert_last_timestamp_seconds") > 1_700_000_000


def add_transaction(engine: Engine, tx_id: str, kind: str, status: TxStatus) -> None:
    with write_session(engine) as session:
        session.add(ChainTransaction(tx_id=tx_id, idempotency_key=tx_id, kind=kind, function="placeBet", sender=ALICE, status=status))


def test_chainapi_transactions_by_status(db: tuple[str, Engine]) -> None:  # noqa: F811
    from wagerlab.platform.app import build_chainapi_app

    url, engine = db
    add_transaction(engine, "t1", "relay", TxStatus.MINED)
    add_transaction(engine, "t2", "relay", TxStatus.MINED)
    add_transaction(engine, "t3", "relay", TxStatus.REVERTED)
    add_transaction(engine, "t4", "operator", TxStatus.PENDING)
    app = build_chainapi_app(make_config(url), engine=engine)
    # No lifespan: the receipt tracker would try to reach the config's unreachable node.
    client = TestClient(app)
    client.get("/transactions/t1")

    samples = scrape(client)

    assert value(samples, "wagerlab_chain_transactions", kind="relay", status="mined") == 2
    assert value(samples, "wagerlab_chain_transactions", kind="relay", status="reverted") == 1
    assert value(samples, "wagerlab_chain_transactions", kind="operator", status="pending") == 1
    route = {"service": "chainapi", "method": "GET", "route": "/transactions/{tx_id}", "status": "200"}
    assert value(samples, "wagerlab_http_requests_total", **route) == 1


def monitors_scrape(supervisor: Supervisor) -> httpx.Response:
    async def request() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_health_app(supervisor))
        async with httpx.AsyncClient(transport=transport, base_url="http://monitors") as client:
            return await client.get("/metrics")

    return asyncio.run(request())


def test_monitors_lag_and_health(tmp_path: Path) -> None:
    url, engine = make_database(tmp_path)
    monitors = build_monitors(make_monitor_config(url), engine)
    for monitor in monitors:
        monitor.health.state = MonitorState.LIVE
        monitor.health.cursor_block, monitor.health.cursor_log_index = 10, -1
        monitor.health.head_block = 12
        monitor.health.events_applied = 5
    monitors[1].health.state = MonitorState.BACKOFF
    monitors[1].health.head_block = 40
    monitors[1].health.restarts = 2

    response = monitors_scrape(Supervisor(monitors))

    assert response.status_code == 200
    samples = parse(response.text)
    name = monitors[1].name
    assert value(samples, "wagerlab_monitor_lag_blocks", monitor=monitors[0].name) == 3
    assert value(samples, "wagerlab_monitor_lag_blocks", monitor=name) == 31
    assert value(samples, "wagerlab_monitor_healthy", monitor=name, state="backoff") == 0
    assert value(samples, "wagerlab_monitor_healthy", monitor=monitors[0].name, state="live") == 1
    assert value(samples, "wagerlab_monitor_restarts_total", monitor=name) == 2
    assert value(samples, "wagerlab_monitor_events_applied_total", monitor=monitors[2].name) == 5


def test_monitors_lag_unknown_left_out(tmp_path: Path) -> None:
    url, engine = make_database(tmp_path)
    monitors = build_monitors(make_monitor_config(url), engine)

    samples = parse(monitors_scrape(Supervisor(monitors)).text)

    assert not any(name == "wagerlab_monitor_lag_blocks" for name, _ in samples)
    assert value(samples, "wagerlab_monitor_healthy", monitor=monitors[0].name, state="starting") == 0


def test_registry_per_service_independent() -> None:
    first, second = ServiceMetrics("api"), ServiceMetrics("api")

    first.observe("GET", "/api/health", 200, 0.01)

    assert value(parse(first.render().decode()), "wagerlab_http_requests_total", service="api", method="GET", route="/api/health", status="200") == 1
    assert value(parse(second.render().decode()), "wagerlab_http_requests_total", service="api", method="GET", route="/api/health", status="200") is None


def test_database_collector_failure_left_out(db: tuple[str, Engine]) -> None:  # noqa: F811
    from wagerlab.platform.metrics import ChainTransactionCollector

    url, engine = db
    metrics = ServiceMetrics("chainapi")
    metrics.register(ChainTransactionCollector(engine))
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE chain_transactions")

    samples: dict[Any, float] = parse(metrics.render().decode())

    assert not any(name.startswith("wagerlab_chain_transactions") for name, _ in samples)


class EchoApi:
    """A stand-in api that returns the request id it received."""

    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def markets(request: Request) -> JSONResponse:
            return JSONResponse({"request_id": request.headers.get("x-request-id")})

        return Starlette(routes=[Route("/api/markets", markets, methods=["GET"])])


def gateway_get(tmp_path: Path, path: str, headers: dict[str, str] | None = None) -> tuple[httpx.Response, httpx.Response]:
    """Send one GET through a gateway, then scrape the gateway's /metrics."""
    from gateway_fixtures import make_gateway

    harness = make_gateway(tmp_path, upstream=EchoApi())  # type: ignore[arg-type]

    async def requests() -> tuple[httpx.Response, httpx.Response]:
        async with harness.client() as client:
            return await client.get(path, headers=headers or {}), await client.get("/metrics")

    return asyncio.run(requests())


def test_gateway_generates_request_id(tmp_path: Path) -> None:
    response, metrics = gateway_get(tmp_path, "/api/markets")

    forwarded = response.json()["request_id"]
    assert response.status_code == 200
    assert len(forwarded) == 32
    assert response.headers["x-request-id"] == forwarded
    samples = parse(metrics.text)
    assert value(samples, "wagerlab_http_requests_total", service="gateway", method="GET", route="/{path:path}", status="200") == 1


def test_gateway_keeps_valid_request_id(tmp_path: Path) -> None:
    response, _ = gateway_get(tmp_path, "/api/markets", {"X-Request-ID": "client-42"})

    assert response.json()["request_id"] == "client-42"


def test_gateway_replaces_invalid_request_id(tmp_path: Path) -> None:
    response, _ = gateway_get(tmp_path, "/api/markets", {"X-Request-ID": "has spaces"})

    forwarded = response.json()["request_id"]
    assert forwarded != "has spaces"
    assert len(forwarded) == 32


def test_stream_subscribers_metrics(db: tuple[str, Engine]) -> None:  # noqa: F811
    from wagerlab.platform.stream import build_stream_app

    url, engine = db
    app = build_stream_app(make_config(url), engine=engine)
    app.state.stream.hub.stats.connected_total = 5
    app.state.stream.hub.stats.subscribers = 2

    samples = scrape(TestClient(app))

    assert value(samples, "wagerlab_stream_subscribers") == 2
    assert value(samples, "wagerlab_stream_connections_total") == 5
    assert value(samples, "wagerlab_stream_subscribers_dropped_total", reason="slow") is not None
