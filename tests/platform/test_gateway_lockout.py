"""Account lockout after failed logins, credential stuffing, and the counters behind them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import fakeredis
import pytest
import redis.asyncio
from gateway_fixtures import ADMIN, PASSWORD, StandInApi, make_gateway

from wagerlab.platform.gateway.counters import WindowCounters

pytestmark = pytest.mark.anyio

REDIS_URL = "redis://127.0.0.1:6379/13"
"""A database number of its own; keys carry a random prefix and are deleted afterwards."""


async def login(client, username: str, password: str) -> int:  # type: ignore[no-untyped-def]
    return (await client.post("/api/login", json={"username": username, "password": password})).status_code


async def test_lockout_after_exactly_n_failures(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path, security={"login_failures": 3})
    async with harness.client() as client:
        statuses = [await login(client, "alice", "guess") for _ in range(3)]
        locked = await client.post("/api/login", json={"username": "alice", "password": PASSWORD})

    assert statuses == [401, 401, 401]
    assert locked.status_code == 423
    assert locked.json()["error"] == "account_locked"
    assert harness.upstream.logins == 3
    assert len(harness.alerts("account_locked")) == 1


async def test_lockout_not_after_fewer_failures(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path, security={"login_failures": 3})
    async with harness.client() as client:
        statuses = [await login(client, "alice", "guess") for _ in range(2)]
        statuses.append(await login(client, "alice", PASSWORD))
        statuses += [await login(client, "alice", "guess") for _ in range(2)]
        statuses.append(await login(client, "alice", PASSWORD))

    assert statuses == [401, 401, 200, 401, 401, 200]
    assert harness.alerts("account_locked") == []


async def test_lockout_exact_under_concurrent_attempts(tmp_path: Path) -> None:
    upstream = StandInApi(login_delay=0.05)
    harness = make_gateway(tmp_path, upstream=upstream, security={"login_failures": 5})
    async with harness.client() as client:
        statuses = await asyncio.gather(*(login(client, "alice", f"guess {index}") for index in range(40)))

    assert statuses.count(401) == 5
    assert statuses.count(423) == 35
    assert upstream.logins == 5
    assert len(harness.alerts("account_locked")) == 1


async def test_lockout_admin_unlocks(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path, security={"login_failures": 2})
    async with harness.client() as client, harness.client("192.0.2.50") as admin:
        for _ in range(2):
            await login(client, "alice", "guess")
        status = await admin.get("/gateway/admin/accounts/alice", headers=ADMIN)
        rejected = await admin.post("/gateway/admin/accounts/alice/unlock")
        unlocked = await admin.post("/gateway/admin/accounts/alice/unlock", headers=ADMIN)
        after = await login(client, "alice", PASSWORD)

    assert status.json() == {"username": "alice", "locked": True}
    assert rejected.status_code == 401
    assert unlocked.json() == {"username": "alice", "was_locked": True, "locked": False}
    assert after == 200


async def test_lockout_invalid_body_frees_slot(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path, security={"login_failures": 1})
    async with harness.client() as client:
        no_password = await client.post("/api/login", json={"username": "alice"})
        after = await login(client, "alice", PASSWORD)

    assert no_password.status_code == 422
    assert after == 200


async def test_credential_stuffing_blocks_ip(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path, security={"ip_login_failures": 6, "login_failures": 3})
    async with harness.client("203.0.113.66") as stuffer, harness.client("203.0.113.67") as bystander:
        statuses = [await login(stuffer, f"user{index}", "password1") for index in range(8)]
        bystander_status = await login(bystander, "user0", PASSWORD)

    assert statuses[:6] == [401] * 6
    assert statuses[6:] == [403, 403]
    assert bystander_status == 200
    alerts = harness.alerts("credential_stuffing")
    assert len(alerts) == 1
    assert "203.0.113.66" in alerts[0].detail
    assert harness.alerts("account_locked") == []


async def test_credential_stuffing_not_below_limit(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path, security={"ip_login_failures": 6})
    async with harness.client("203.0.113.66") as client:
        statuses = [await login(client, f"user{index}", "password1") for index in range(5)]
        statuses.append(await login(client, "user9", PASSWORD))

    assert statuses == [401] * 5 + [200]
    assert harness.alerts("credential_stuffing") == []


@pytest.fixture(params=["fakeredis", "redis"])
async def counters(request: pytest.FixtureRequest) -> AsyncIterator[WindowCounters]:
    if request.param == "fakeredis":
        client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    else:
        client = redis.asyncio.from_url(REDIS_URL)
        try:
            await client.ping()
        except (redis.ConnectionError, OSError):
            pytest.skip(f"no Redis at {REDIS_URL}")
    prefix = f"test-{uuid.uuid4().hex}:"
    yield WindowCounters(client, prefix)
    keys = [key async for key in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_counters_concurrent_hits_all_counted(counters: WindowCounters) -> None:
    counts = await asyncio.gather(*(counters.hit("ip:1", 30) for _ in range(50)))

    assert sorted(counts) == list(range(1, 51))
    assert 0 < await counters.ttl("ip:1") <= 30


async def test_counters_give_expiry_to_counter_without_one(counters: WindowCounters) -> None:
    await counters.redis.set(counters.key("ip:2"), "7")
    assert await counters.ttl("ip:2") == -1

    assert await counters.hit("ip:2", 30) == 8
    assert 0 < await counters.ttl("ip:2") <= 30


async def test_counters_keep_window_start(counters: WindowCounters) -> None:
    await counters.hit("ip:3", 30)
    await counters.redis.expire(counters.key("ip:3"), 5)
    await counters.hit("ip:3", 30)

    assert await counters.ttl("ip:3") <= 5


async def test_counters_release_never_below_zero(counters: WindowCounters) -> None:
    await counters.hit("slots", 30)

    assert await counters.release("slots", 30) == 0
    assert await counters.release("slots", 30) == 0
    assert await counters.count("slots") == 0
