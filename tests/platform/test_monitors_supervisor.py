"""The supervisor's restarts and the health endpoint."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from monitor_fixtures import make_config, make_database
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from wagerlab.platform.alerts import post_alert, raise_alert, set_webhook_url
from wagerlab.platform.db import Alert, AlertSeverity
from wagerlab.platform.monitors import DepositsMonitor, LogMonitor, Supervisor, build_monitors
from wagerlab.platform.monitors.errors import HealthServerError
from wagerlab.platform.monitors.follow import Backoff
from wagerlab.platform.monitors.health import MonitorState
from wagerlab.platform.monitors.supervisor import bind_health_socket, build_health_app


class CrashingMonitor(DepositsMonitor):
    """Raises from `run` a set number of times, then runs until stopped."""

    crashes_left = 2

    async def run(self, stop: asyncio.Event) -> None:
        if self.crashes_left > 0:
            self.crashes_left -= 1
            raise RuntimeError(f"simulated crash, {self.crashes_left} left")
        self.health.state = MonitorState.LIVE
        await stop.wait()


def test_supervisor_restarts_crashed_monitor(tmp_path: Path) -> None:
    url, engine = make_database(tmp_path)
    monitor = CrashingMonitor(make_config(url), engine)
    supervisor = Supervisor([monitor], restart_initial=0.01, restart_max=0.02)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(supervisor.run(stop))
        while monitor.health.state is not MonitorState.LIVE:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(scenario())

    assert monitor.health.restarts == 2
    assert monitor.health.last_error == "RuntimeError: simulated crash, 0 left"


def monitors_in(tmp_path: Path) -> list[LogMonitor]:
    url, engine = make_database(tmp_path)
    return build_monitors(make_config(url), engine)


def get_health(supervisor: Supervisor) -> httpx.Response:
    async def request() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_health_app(supervisor))
        async with httpx.AsyncClient(transport=transport, base_url="http://monitors") as client:
            return await client.get("/health")

    return asyncio.run(request())


def test_health_ok_when_all_live(tmp_path: Path) -> None:
    monitors = monitors_in(tmp_path)
    for monitor in monitors:
        monitor.health.state = MonitorState.LIVE
        monitor.health.cursor_block, monitor.health.cursor_log_index = 10, -1
        monitor.health.head_block = 12
    response = get_health(Supervisor(monitors))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert sorted(body["monitors"]) == ["bets", "deposits", "settlement"]
    assert body["monitors"]["bets"]["lag_blocks"] == 3
    assert body["monitors"]["bets"]["state"] == "live"


def test_health_degraded_in_backoff(tmp_path: Path) -> None:
    monitors = monitors_in(tmp_path)
    for monitor in monitors:
        monitor.health.state = MonitorState.LIVE
    monitors[1].health.state = MonitorState.BACKOFF
    monitors[1].health.record_error(ConnectionError("node down"))
    response = get_health(Supervisor(monitors))

    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    assert response.json()["monitors"]["bets"]["last_error"] == "ConnectionError: node down"


def test_health_socket_busy_port_rejected() -> None:
    taken = bind_health_socket("127.0.0.1", 0)
    port = taken.getsockname()[1]
    taken.listen()
    try:
        with pytest.raises(HealthServerError, match=f"127.0.0.1:{port}.*monitors_port"):
            bind_health_socket("127.0.0.1", port)
    finally:
        taken.close()


def test_backoff_doubles_to_cap() -> None:
    backoff = Backoff(0.5, 3.0)

    delays = [backoff.next_delay() for _ in range(5)]
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5


class StuckMonitor(DepositsMonitor):
    """Stays in backoff until `recover` is set, then runs live until stopped."""

    recover: asyncio.Event | None = None

    async def run(self, stop: asyncio.Event) -> None:
        self.health.state = MonitorState.BACKOFF
        self.health.restarts = 3
        self.health.record_error(ConnectionError("node down"))
        assert self.recover is not None
        await self.recover.wait()
        self.health.state = MonitorState.LIVE
        await stop.wait()


def alerts_in(engine: Engine) -> list[Alert]:
    with Session(engine) as session:
        return list(session.exec(select(Alert).order_by(Alert.id)).all())


def test_sustained_failure_alerts_once(tmp_path: Path) -> None:
    url, engine = make_database(tmp_path)
    monitor = StuckMonitor(make_config(url), engine)
    supervisor = Supervisor([monitor], engine=engine, alert_after=0.2, check_interval=0.02)
    seen_unhealthy_since: list[float | None] = []

    async def scenario() -> None:
        stop = asyncio.Event()
        monitor.recover = asyncio.Event()
        task = asyncio.create_task(supervisor.run(stop))
        while not alerts_in(engine):
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # time for a wrong second alert
        seen_unhealthy_since.append(monitor.health.unhealthy_since)
        monitor.recover.set()
        while len(alerts_in(engine)) < 2:
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(scenario())

    down, recovered = alerts_in(engine)
    assert (down.rule, down.severity, down.source) == ("monitor_down", AlertSeverity.CRITICAL, "deposits")
    assert "backoff" in down.detail
    assert "3 restart(s)" in down.detail
    assert "ConnectionError: node down" in down.detail
    assert (recovered.rule, recovered.severity) == ("monitor_recovered", AlertSeverity.INFO)
    assert seen_unhealthy_since[0] is not None
    assert monitor.health.unhealthy_since is None


def test_short_failure_raises_no_alert(tmp_path: Path) -> None:
    url, engine = make_database(tmp_path)
    monitor = CrashingMonitor(make_config(url), engine)
    supervisor = Supervisor([monitor], restart_initial=0.01, restart_max=0.02, engine=engine, alert_after=5.0, check_interval=0.01)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(supervisor.run(stop))
        while monitor.health.state is not MonitorState.LIVE:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(scenario())

    assert alerts_in(engine) == []


class WebhookReceiver:
    """An HTTP server on a free loopback port that stores the JSON bodies posted to it."""

    def __init__(self, status: int = 204) -> None:
        received: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (the name http.server calls)
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_alert_posted_to_webhook(tmp_path: Path) -> None:
    _url, engine = make_database(tmp_path)
    with WebhookReceiver() as receiver:
        set_webhook_url(receiver.url)
        try:
            alert = raise_alert(engine, "monitor_down", AlertSeverity.CRITICAL, "bets", "bets has been backoff for 31 s")
        finally:
            set_webhook_url(None)

    assert receiver.received == [
        {"id": alert.id, "rule": "monitor_down", "severity": "critical", "source": "bets", "detail": "bets has been backoff for 31 s", "created_at": alert.created_at}
    ]


def test_webhook_failure_keeps_alert(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _url, engine = make_database(tmp_path)
    with WebhookReceiver(status=500) as receiver:
        set_webhook_url(receiver.url)
        try:
            raise_alert(engine, "deep_reorg", AlertSeverity.CRITICAL, "deposits", "block 7 is no longer canonical")
        finally:
            set_webhook_url(None)
    closed = WebhookReceiver()
    closed.server.server_close()
    delivered = post_alert(closed.url, alerts_in(engine)[0])

    assert [alert.rule for alert in alerts_in(engine)] == ["deep_reorg"]
    assert len(receiver.received) == 1
    assert delivered is False
    assert "HTTP 500" in caplog.text
    assert "failed" in caplog.text
