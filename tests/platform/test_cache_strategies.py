"""Odds caching strategies: two api nodes share one Redis, one changes odds, the other reads.

Every test runs on fakeredis (one FakeServer shared by both nodes) and on the real Redis at
127.0.0.1:6379 in database 11, which these tests own. The real-Redis cases are skipped
when that server is unreachable. Pub/sub is where the two differ: fakeredis delivers a
message inside the process, real Redis over a second connection that can be lost.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import fakeredis
import pytest
import redis.asyncio

from wagerlab.platform.cache import PlatformCache, token_key
from wagerlab.platform.cache.strategies import (
    BROADCAST_WINDOW_MS,
    CacheStrategyError,
    OddsEntry,
    XFetchStrategy,
    now_ms,
    odds_key,
)
from wagerlab.platform.cache.stats import CacheStats

REAL_REDIS_URL = "redis://127.0.0.1:6379/11"
TTL_SECONDS = 2
SLACK_MS = 1_000
"""Allowance for a loaded CI machine on top of each promised window."""

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeOddsTable:
    """The `odds` rows of a few markets, with a count of queries and an optional delay."""

    def __init__(self, delay: float = 0.0) -> None:
        self.rows = {1: {"market_id": 1, "odds": [1_800_000, 2_100_000], "version": 1, "updated_at": now_ms()}}
        self.queries = 0
        self.delay = delay

    async def load(self, market_id: int) -> dict[str, Any] | None:
        self.queries += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        row = self.rows.get(market_id)
        return None if row is None else dict(row)

    def change(self, market_id: int, odds: list[int]) -> dict[str, Any]:
        row = self.rows[market_id]
        row.update(odds=odds, version=row["version"] + 1, updated_at=now_ms())
        return row


NodeFactory = Callable[[str], PlatformCache]


async def _real_redis_available() -> bool:
    client = redis.asyncio.from_url(REAL_REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
        await client.flushdb()  # database 11 belongs to these tests alone
        return True
    except (redis.exceptions.ConnectionError, OSError):
        return False
    finally:
        await client.aclose()


@pytest.fixture(params=["fakeredis", "redis"])
async def make_node(request: pytest.FixtureRequest) -> AsyncIterator[NodeFactory]:
    """Return a factory of api-node caches that share one Redis (fake or real)."""
    if request.param == "redis" and not await _real_redis_available():
        pytest.skip(f"no Redis at {REAL_REDIS_URL}: start redis-server on 127.0.0.1:6379 to run this case")
    server = fakeredis.FakeServer()
    nodes: list[PlatformCache] = []

    def make(strategy: str) -> PlatformCache:
        client = fakeredis.FakeAsyncRedis(server=server) if request.param == "fakeredis" else redis.asyncio.from_url(REAL_REDIS_URL)
        node = PlatformCache(client, odds_ttl_seconds=TTL_SECONDS, token_ttl_seconds=60, strategy=strategy)
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        await node.close()


async def _change_on(node: PlatformCache, table: FakeOddsTable, odds: list[int]) -> None:
    row = table.change(1, odds)
    await node.invalidate_odds(1, row["version"], row["updated_at"])


async def _read_until_version(node: PlatformCache, table: FakeOddsTable, version: int, limit_ms: int) -> int:
    """Read until `version` is served; return the milliseconds that took."""
    started = now_ms()
    while True:
        odds = await node.get_odds(1, table.load)
        assert odds is not None
        if odds["version"] >= version:
            return now_ms() - started
        assert now_ms() - started <= limit_ms, f"still version {odds['version']} after {limit_ms} ms"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("strategy", ["none", "ttl-broadcast", "coalesce", "two-tier"])
async def test_change_seen_on_other_node(make_node: NodeFactory, strategy: str) -> None:
    writer, reader = make_node(strategy), make_node(strategy)
    table = FakeOddsTable()
    await writer.get_odds(1, table.load)
    await reader.get_odds(1, table.load)
    await reader.get_odds(1, table.load)

    await _change_on(writer, table, [1_700_000, 2_300_000])
    waited_ms = await _read_until_version(reader, table, 2, limit_ms=max(reader.strategy.staleness_window_ms, 50) + SLACK_MS)

    assert waited_ms <= reader.strategy.staleness_window_ms + SLACK_MS
    assert (await reader.get_odds(1, table.load))["odds"] == [1_700_000, 2_300_000]  # type: ignore[index]


@pytest.mark.parametrize("strategy", ["ttl", "xfetch"])
async def test_ttl_serves_old_odds_until_expiry(make_node: NodeFactory, strategy: str) -> None:
    writer, reader = make_node(strategy), make_node(strategy)
    table = FakeOddsTable()
    await reader.get_odds(1, table.load)

    await _change_on(writer, table, [1_700_000, 2_300_000])
    stale = await reader.get_odds(1, table.load)
    waited_ms = await _read_until_version(reader, table, 2, limit_ms=TTL_SECONDS * 1000 + SLACK_MS)

    assert stale is not None and stale["version"] == 1
    assert waited_ms <= reader.strategy.staleness_window_ms + SLACK_MS
    assert reader.stats.stale_reads >= 1
    assert 0 < reader.stats.odds_staleness.max <= TTL_SECONDS * 1000 + SLACK_MS


async def test_none_queries_every_read(make_node: NodeFactory) -> None:
    node = make_node("none")
    table = FakeOddsTable()

    for _ in range(5):
        await node.get_odds(1, table.load)

    assert table.queries == 5
    assert (node.stats.hits, node.stats.misses, node.stats.db_reads) == (0, 5, 5)


@pytest.mark.parametrize("strategy", ["ttl", "ttl-broadcast", "xfetch", "coalesce", "two-tier"])
async def test_cached_reads_count_hits(make_node: NodeFactory, strategy: str) -> None:
    node = make_node(strategy)
    table = FakeOddsTable()

    for _ in range(5):
        await node.get_odds(1, table.load)

    assert table.queries == 1
    assert node.stats.db_reads == 1
    assert node.stats.hits + node.stats.misses == 5
    assert node.stats.odds_age.to_json()["buckets"]["inf"] == 0
    assert sum(node.stats.odds_age.counts) == 5


async def test_unknown_market_is_not_cached(make_node: NodeFactory) -> None:
    node = make_node("ttl")
    table = FakeOddsTable()

    assert await node.get_odds(99, table.load) is None
    assert await node.get_odds(99, table.load) is None
    assert table.queries == 2


async def test_coalesce_one_query_per_key(make_node: NodeFactory) -> None:
    node = make_node("coalesce")
    table = FakeOddsTable(delay=0.05)

    results = await asyncio.gather(*(node.get_odds(1, table.load) for _ in range(50)))

    assert table.queries == 1
    assert all(result == results[0] for result in results)
    assert node.stats.coalesced == 49


async def test_coalesce_failure_reaches_every_waiter(make_node: NodeFactory) -> None:
    node = make_node("coalesce")

    async def failing_load(market_id: int) -> dict[str, Any] | None:
        await asyncio.sleep(0.02)
        raise OSError(f"database unreachable while loading market {market_id}")

    results = await asyncio.gather(*(node.get_odds(1, failing_load) for _ in range(5)), return_exceptions=True)

    assert all(isinstance(result, OSError) for result in results)
    assert node.strategy._in_flight == {}  # type: ignore[attr-defined]


async def test_two_tier_serves_local_copy(make_node: NodeFactory) -> None:
    node = make_node("two-tier")
    table = FakeOddsTable()

    for _ in range(4):
        await node.get_odds(1, table.load)
    await node.client.delete(odds_key(1))  # the local tier still has it
    await node.get_odds(1, table.load)

    assert node.stats.local_hits == 4
    assert table.queries == 1


async def test_two_tier_drops_local_on_lost_subscription(make_node: NodeFactory) -> None:
    node = make_node("two-tier")
    table = FakeOddsTable()
    await node.get_odds(1, table.load)
    await node.get_odds(1, table.load)

    node.strategy.on_subscription_lost()
    table.change(1, [1_700_000, 2_300_000])
    await node.client.delete(odds_key(1))
    after = await node.get_odds(1, table.load)

    assert after is not None and after["version"] == 2
    assert node.strategy._local == {}  # type: ignore[attr-defined]


async def test_two_tier_reconnects_after_client_kill() -> None:
    if not await _real_redis_available():
        pytest.skip(f"no Redis at {REAL_REDIS_URL}: killing a pub/sub connection needs a real server")
    name = f"wagerlab-test-{random.randrange(10**9)}"
    node = PlatformCache(
        redis.asyncio.from_url(REAL_REDIS_URL, client_name=name), odds_ttl_seconds=30, token_ttl_seconds=60, strategy="two-tier"
    )
    admin = redis.asyncio.from_url(REAL_REDIS_URL)
    table = FakeOddsTable()
    try:
        await node.get_odds(1, table.load)
        await node.get_odds(1, table.load)
        assert node.stats.local_hits == 1

        # Kill only this node's subscriber connection; other programs may use pub/sub too.
        clients = await admin.client_list()
        subscriber_ids = [client["id"] for client in clients if client.get("name") == name and int(client.get("sub", 0)) > 0]
        assert len(subscriber_ids) == 1
        await admin.client_kill_filter(_id=subscriber_ids[0])
        deadline = time.monotonic() + 5
        while node.stats.subscription_losses == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

        assert node.stats.subscription_losses == 1
        assert node.strategy._local == {}  # type: ignore[attr-defined]
        while not node.strategy.subscribed and time.monotonic() < deadline:  # type: ignore[attr-defined]
            await asyncio.sleep(0.05)
        assert node.strategy.subscribed  # type: ignore[attr-defined]
    finally:
        await admin.aclose()
        await node.close()


async def test_xfetch_recomputes_near_expiry() -> None:
    stats = CacheStats(strategy="xfetch")
    strategy = XFetchStrategy(fakeredis.FakeAsyncRedis(), 30, stats, rng=random.Random(7))
    fresh = OddsEntry({"version": 1}, loaded_at_ms=now_ms(), load_ms=5, expires_at_ms=now_ms() + 30_000)
    expiring = OddsEntry({"version": 1}, loaded_at_ms=now_ms() - 29_990, load_ms=50, expires_at_ms=now_ms() + 10)

    early = sum(strategy._recompute_early(expiring) for _ in range(100))
    never = sum(strategy._recompute_early(fresh) for _ in range(100))

    assert early > 50
    assert never == 0


async def test_staleness_from_broadcast(make_node: NodeFactory) -> None:
    writer, reader = make_node("ttl"), make_node("ttl")
    table = FakeOddsTable()
    await reader.get_odds(1, table.load)

    await _change_on(writer, table, [1_700_000, 2_300_000])
    deadline = time.monotonic() + 2
    while reader.stats.invalidations_received == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    await reader.get_odds(1, table.load)

    assert reader.stats.invalidations_received == 1
    assert reader.stats.stale_reads == 1
    assert reader.stats.odds_staleness.max >= 50


async def test_tokens_shared_between_nodes(make_node: NodeFactory) -> None:
    first, second = make_node("two-tier"), make_node("two-tier")

    await first.store_token("digest-1", 42)

    assert await second.user_for_token("digest-1") == 42
    assert await second.user_for_token("digest-unknown") is None
    assert await second.client.get(token_key("digest-1")) == b"42"
    assert (second.stats.token_hits, second.stats.token_misses) == (1, 1)


def test_unknown_strategy_names_valid_ones() -> None:
    with pytest.raises(CacheStrategyError, match=r"unknown cache strategy 'lru': expected one of none, ttl, ttl-broadcast"):
        PlatformCache(fakeredis.FakeAsyncRedis(), odds_ttl_seconds=30, token_ttl_seconds=60, strategy="lru")


def test_broadcast_window_is_promised() -> None:
    stats = CacheStats()
    for name, window in [("none", 0), ("ttl", 30_000), ("ttl-broadcast", BROADCAST_WINDOW_MS), ("two-tier", BROADCAST_WINDOW_MS)]:
        node = PlatformCache(fakeredis.FakeAsyncRedis(), odds_ttl_seconds=30, token_ttl_seconds=60, strategy=name)
        assert node.strategy.staleness_window_ms == window, name
    assert stats.strategy == "ttl"


async def test_token_memo_honours_expiry() -> None:
    node = PlatformCache(fakeredis.FakeAsyncRedis(), odds_ttl_seconds=30, token_ttl_seconds=1, strategy="ttl")
    await node.store_token("digest-1", 42)

    first = await node.user_for_token("digest-1")
    await node.client.delete(token_key("digest-1"))
    memo = await node.user_for_token("digest-1")
    await asyncio.sleep(1.1)
    expired = await node.user_for_token("digest-1")
    await node.close()

    assert (first, memo, expired) == (42, 42, None)
