"""The gateway while its Redis is unreachable: requests pass without limits, logins are refused."""

from __future__ import annotations

from pathlib import Path

import fakeredis
import pytest

from gateway_fixtures import ADMIN, PASSWORD, GatewayHarness, make_gateway

pytestmark = pytest.mark.anyio


def outage_gateway(tmp_path: Path, **security: int) -> tuple[GatewayHarness, fakeredis.FakeServer]:
    server = fakeredis.FakeServer()
    harness = make_gateway(tmp_path, redis_client=fakeredis.FakeAsyncRedis(server=server), security=security)
    return harness, server


async def test_requests_pass_without_limits(tmp_path: Path) -> None:
    harness, server = outage_gateway(tmp_path, ip_requests=2, ip_block_requests=100)
    server.connected = False
    async with harness.client() as client:
        statuses = [(await client.get("/api/markets")).status_code for _ in range(5)]

    assert statuses == [200] * 5
    alerts = harness.alerts("limits_unavailable")
    assert len(alerts) == 1
    assert "Redis is unreachable" in alerts[0].detail


async def test_limits_count_again_after_outage(tmp_path: Path) -> None:
    harness, server = outage_gateway(tmp_path, ip_requests=2, ip_block_requests=100)
    async with harness.client() as client:
        server.connected = False
        during = [(await client.get("/api/markets")).status_code for _ in range(3)]
        server.connected = True
        after = [(await client.get("/api/markets")).status_code for _ in range(3)]

    assert during == [200, 200, 200]
    assert after == [200, 200, 429]


async def test_login_refused_during_outage(tmp_path: Path) -> None:
    harness, server = outage_gateway(tmp_path)
    server.connected = False
    async with harness.client() as client:
        response = await client.post("/api/login", json={"username": "alice", "password": PASSWORD})

    assert response.status_code == 503
    assert response.json()["error"] == "service_unavailable"
    assert "retry in a few seconds" in response.json()["detail"]
    assert harness.upstream.logins == 0


async def test_login_works_after_outage(tmp_path: Path) -> None:
    harness, server = outage_gateway(tmp_path)
    async with harness.client() as client:
        server.connected = False
        refused = await client.post("/api/login", json={"username": "alice", "password": PASSWORD})
        server.connected = True
        accepted = await client.post("/api/login", json={"username": "alice", "password": PASSWORD})

    assert refused.status_code == 503
    assert accepted.status_code == 200
    assert accepted.json()["token"] == "token-of-alice"


async def test_admin_unblock_answers_503(tmp_path: Path) -> None:
    harness, server = outage_gateway(tmp_path)
    server.connected = False
    async with harness.client() as client:
        response = await client.delete("/gateway/admin/blocks/203.0.113.9", headers=ADMIN)

    assert response.status_code == 503
    assert "cache is unreachable" in response.json()["detail"]
