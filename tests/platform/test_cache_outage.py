"""A simulated Redis outage: the cache falls back instead of failing, and writes what it missed afterwards.

Every cache test runs on fakeredis and on the real Redis at 127.0.0.1:6379 in database 10,
which these tests own. The real-Redis cases are skipped when that server is unreachable.
The real server keeps running, because the outage is injected in the client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import fakeredis
import pytest
import redis.asyncio
from sqlalchemy.engine import Engine
from sqlmodel import select
from starlette.testclient import TestClient

from api_fixtures import ADMIN_TOKEN, FAST_PASSWORDS, auth, db, make_config, register_and_login  # noqa: F401
from wagerlab.platform import cache as cache_module
from wagerlab.platform.app import build_api_app
from wagerlab.platform.auth import token_digest
from wagerlab.platform.cache import PlatformCache, token_key
from wagerlab.platform.cache.strategies import now_ms, odds_key
from wagerlab.platform.db import AuthToken, User, read_session, write_session
from wagerlab.platform.errors import ServiceUnavailableError
from wagerlab.platform.quotes import WallClock

REAL_REDIS_URL = "redis://127.0.0.1:6379/10"
OUTAGE_SECONDS = 1
RECOVERY_TIMEOUT_SECONDS = 10.0

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class OddsTable:
    def __init__(self) -> None:
        self.row = {"market_id": 1, "odds": [1_800_000, 2_100_000], "version": 1, "updated_at": now_ms()}
        self.queries = 0

    async def load(self, market_id: int) -> dict[str, Any] | None:
        self.queries += 1
        return dict(self.row) if market_id == 1 else None

    def change(self) -> dict[str, Any]:
        self.row.update(version=self.row["version"] + 1, updated_at=now_ms())
        return self.row


async def _real_redis_available() -> bool:
    client = redis.asyncio.from_url(REAL_REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
        await client.flushdb()  # database 10 belongs to these tests alone
        return True
    except (redis.exceptions.ConnectionError, OSError):
        return False
    finally:
        await client.aclose()


NodeFactory = Callable[[], PlatformCache]


@pytest.fixture(params=["fakeredis", "redis"])
async def make_node(request: pytest.FixtureRequest) -> AsyncIterator[NodeFactory]:
    """Return a factory of caches on one Redis (fake or real), each with a client of its own."""
    if request.param == "redis" and not await _real_redis_available():
        pytest.skip(f"no Redis at {REAL_REDIS_URL}: start redis-server on 127.0.0.1:6379 to run this case")
    server = fakeredis.FakeServer()
    nodes: list[PlatformCache] = []

    def make() -> PlatformCache:
        client = fakeredis.FakeAsyncRedis(server=server) if request.param == "fakeredis" else redis.asyncio.from_url(REAL_REDIS_URL)
        node = PlatformCache(client, odds_ttl_seconds=30, token_ttl_seconds=60, strategy="ttl-broadcast")
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        await node.close()


async def _wait_recovered(node: PlatformCache) -> dict[str, Any]:
    deadline = time.monotonic() + RECOVERY_TIMEOUT_SECONDS
    while True:
        report = node.outage_report()
        if not report["active"] and report["pending"] == 0:
            return report
        assert time.monotonic() < deadline, f"the cache did not recover: {report}"
        await asyncio.sleep(0.05)


async def test_outage_odds_read_from_database(make_node: NodeFactory) -> None:
    node, table = make_node(), OddsTable()
    await node.get_odds(1, table.load)
    queries_before = table.queries

    await node.simulate_outage(OUTAGE_SECONDS)
    odds = await node.get_odds(1, table.load)

    assert odds is not None
    assert odds["version"] == 1
    assert table.queries == queries_before + 1
    assert node.stats.odds_fallbacks == 1
    assert node.outage_report()["active"] is True


async def test_outage_change_written_after_it(make_node: NodeFactory) -> None:
    writer, reader, table = make_node(), make_node(), OddsTable()
    await reader.get_odds(1, table.load)
    assert await reader.client.get(odds_key(1)) is not None

    await writer.simulate_outage(OUTAGE_SECONDS)
    row = table.change()
    await writer.invalidate_odds(1, row["version"], row["updated_at"])
    during = await writer.get_odds(1, table.load)
    report = await _wait_recovered(writer)

    assert during is not None
    assert during["version"] == 2
    assert report["replayed_invalidations"] == 1
    assert await reader.client.get(odds_key(1)) is None
    after = await reader.get_odds(1, table.load)
    assert after is not None
    assert after["version"] == 2


async def test_outage_token_kept_then_written(make_node: NodeFactory) -> None:
    node = make_node()

    await node.simulate_outage(OUTAGE_SECONDS)
    await node.store_token("digest-new", 42)
    during = await node.user_for_token("digest-new")
    report = await _wait_recovered(node)

    assert during == 42
    assert report["token_fallbacks"] == 1
    assert report["replayed_tokens"] == 1
    assert await node.client.get(token_key("digest-new")) == b"42"
    assert 0 < await node.client.ttl(token_key("digest-new")) <= 60


async def test_outage_known_token_accepted(make_node: NodeFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    node = make_node()
    # Every check queries Redis, so the in-process memo cannot hide the outage.
    monkeypatch.setattr(cache_module, "TOKEN_MEMO_SECONDS", 0.0)
    await node.store_token("digest-1", 7)
    assert await node.user_for_token("digest-1") == 7

    await node.simulate_outage(OUTAGE_SECONDS)

    assert await node.user_for_token("digest-1") == 7
    assert node.stats.token_fallbacks == 1


async def test_outage_unknown_token_is_503(make_node: NodeFactory) -> None:
    node = make_node()
    await node.simulate_outage(OUTAGE_SECONDS)

    with pytest.raises(ServiceUnavailableError, match="session store \\(Redis\\) is unreachable") as caught:
        await node.user_for_token("digest-never-seen")

    assert caught.value.status_code == 503


async def test_outage_rejects_invalid_seconds(make_node: NodeFactory) -> None:
    node = make_node()

    with pytest.raises(ValueError, match="outage seconds must be from 0"):
        await node.simulate_outage(0)

    assert node.outage_report()["outages"] == 0


@pytest.fixture
def client(db: tuple[str, Engine]) -> Iterator[TestClient]:  # noqa: F811
    url, engine = db
    app = build_api_app(make_config(url), engine=engine, clock=WallClock())
    app.state.api.passwords = FAST_PASSWORDS
    with TestClient(app) as test_client:
        yield test_client


def test_outage_endpoint_needs_admin(client: TestClient) -> None:
    response = client.post("/api/admin/cache-outage", json={"seconds": 1})

    assert response.status_code == 401


def test_outage_endpoint_rejects_bad_seconds(client: TestClient) -> None:
    response = client.post("/api/admin/cache-outage", json={"seconds": 0}, headers=auth(ADMIN_TOKEN))

    assert response.status_code == 422
    assert response.json()["field"] == "seconds"


def test_outage_endpoint_keeps_login_working(client: TestClient) -> None:
    started = client.post("/api/admin/cache-outage", json={"seconds": 2}, headers=auth(ADMIN_TOKEN))
    token = register_and_login(client, "alice", "0x" + "a1" * 20)
    balance = client.get("/api/balance", headers=auth(token))
    report = client.get("/api/admin/cache-outage", headers=auth(ADMIN_TOKEN)).json()

    assert started.status_code == 200
    assert started.json()["active"] is True
    assert started.json()["backend"] == "fakeredis"
    assert balance.status_code == 200
    assert report["token_fallbacks"] >= 1


def _insert_token(engine: Engine, digest: str, user_id: int, expires_at: int) -> None:
    with write_session(engine) as session:
        session.add(AuthToken(digest=digest, user_id=user_id, expires_at=expires_at))


def test_outage_token_read_from_database(client: TestClient, db: tuple[str, Engine]) -> None:  # noqa: F811
    _url, engine = db
    register_and_login(client, "alice", "0x" + "a1" * 20)
    with read_session(engine) as session:
        user_id = session.exec(select(User.id)).one()
    # Tokens that another api process issued: this process has never seen them.
    _insert_token(engine, token_digest("from-another-process"), user_id, now_ms() + 60_000)
    _insert_token(engine, token_digest("expired"), user_id, now_ms() - 1)

    client.post("/api/admin/cache-outage", json={"seconds": 2}, headers=auth(ADMIN_TOKEN))
    other = client.get("/api/balance", headers=auth("from-another-process"))
    expired = client.get("/api/balance", headers=auth("expired"))
    unknown = client.get("/api/balance", headers=auth("never-issued"))

    assert other.status_code == 200
    assert expired.status_code == 401
    assert unknown.status_code == 401
    assert "log in again" in unknown.json()["detail"]


def test_login_stores_token_row(client: TestClient, db: tuple[str, Engine]) -> None:  # noqa: F811
    _url, engine = db
    first = register_and_login(client, "bob", "0x" + "b0" * 20)
    with read_session(engine) as session:
        user_id = session.exec(select(User.id)).one()
    _insert_token(engine, token_digest("expired"), user_id, now_ms() - 1)

    second = client.post("/api/login", json={"username": "bob", "password": "correct horse"}).json()["token"]

    with read_session(engine) as session:
        rows = session.exec(select(AuthToken)).all()
    assert sorted(row.digest for row in rows) == sorted([token_digest(first), token_digest(second)])
    assert all(row.expires_at > now_ms() for row in rows)
    assert all(row.user_id == user_id for row in rows)


async def test_newer_missed_change_survives_replay() -> None:
    node = PlatformCache(fakeredis.FakeAsyncRedis(), odds_ttl_seconds=30, token_ttl_seconds=60, strategy="ttl-broadcast")
    node._missed_changes[1] = (2, 1_000)
    sent: list[tuple[int, int | None, int]] = []

    async def announce(market_id: int, version: int | None, changed_at: int) -> None:
        sent.append((market_id, version, changed_at))
        # A newer change of the same market fails while this one is being written.
        node._missed_changes[1] = (3, 2_000)

    node._announce_change = announce  # type: ignore[method-assign]
    await node._write_missed()
    await node.close()

    assert sent == [(1, 2, 1_000)]
    assert node._missed_changes == {1: (3, 2_000)}
