"""The supervisor's restarts and the health endpoint."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from monitor_fixtures import make_config, make_database

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
