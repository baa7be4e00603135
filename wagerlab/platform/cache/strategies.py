"""The ways the api can cache odds, one class per strategy, chosen by name per run.

Every strategy returns an `OddsEntry`: the odds and the wall-clock time in ms at which they
were read from the database, so the caller can record the age of each read it serves.
The window each strategy promises (`staleness_window_ms`) is how long after an odds
change a read on any node may still return the previous odds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from wagerlab.platform.cache.stats import CacheStats

logger = logging.getLogger(__name__)

OddsLoader = Callable[[int], Awaitable[dict[str, Any] | None]]
"""Reads the odds of one market from the database; None when the market has none."""

BROADCAST_WINDOW_MS = 1_000
"""Promised delay of a pub/sub invalidation on loopback Redis; an estimate with a wide margin."""

XFETCH_BETA = 1.0
"""The XFetch beta of Vattani, Chierichetti and Lowenstein (VLDB 2015): 1.0 is their default."""


class CacheStrategyError(ValueError):
    """An unknown cache strategy name."""


class AsyncRedis(Protocol):
    """The part of the redis.asyncio client the cache uses (fakeredis has the same)."""

    async def get(self, name: str) -> bytes | None: ...

    async def set(self, name: str, value: str, ex: int | None = None) -> Any: ...

    async def delete(self, *names: str) -> int: ...

    async def publish(self, channel: str, message: str) -> int: ...

    def pubsub(self) -> Any: ...

    def pipeline(self, transaction: bool = True) -> Any: ...

    async def aclose(self) -> None: ...


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def odds_key(market_id: int) -> str:
    return f"odds:{market_id}"


@dataclass(frozen=True)
class OddsEntry:
    """Odds as served, with the time they were read from the database and the read's cost."""

    odds: dict[str, Any]
    loaded_at_ms: int
    load_ms: int = 0
    expires_at_ms: int = 0

    def dumps(self) -> str:
        return json.dumps({"odds": self.odds, "loaded_at_ms": self.loaded_at_ms, "load_ms": self.load_ms, "expires_at_ms": self.expires_at_ms})

    @classmethod
    def loads(cls, raw: bytes) -> OddsEntry:
        data = json.loads(raw)
        return cls(data["odds"], data["loaded_at_ms"], data["load_ms"], data["expires_at_ms"])


class OddsStrategy:
    """No cache: every read queries the database. Subclasses add a cache in front of it."""

    name: ClassVar[str] = "none"
    uses_pubsub: ClassVar[bool] = False

    def __init__(self, client: AsyncRedis, ttl_seconds: int, stats: CacheStats) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.stats = stats

    @property
    def staleness_window_ms(self) -> int:
        return 0

    async def get(self, market_id: int, load: OddsLoader) -> OddsEntry | None:
        self.stats.misses += 1
        return await self._load(market_id, load)

    async def invalidate(self, market_id: int) -> None:
        """Forget cached odds of a market on the node that changed them, after the commit."""

    async def on_invalidation(self, market_id: int) -> None:
        """Handle an odds change another node (or this one) announced over pub/sub."""

    def on_subscription_lost(self) -> None:
        """Handle the loss of the pub/sub connection: invalidations may have been missed."""

    def on_subscribed(self) -> None:
        """Handle a (re)established pub/sub subscription."""

    async def _load(self, market_id: int, load: OddsLoader) -> OddsEntry | None:
        started = now_ms()
        self.stats.db_reads += 1
        odds = await load(market_id)
        if odds is None:
            return None
        finished = now_ms()
        return OddsEntry(odds, loaded_at_ms=started, load_ms=finished - started, expires_at_ms=finished + self.ttl_seconds * 1000)


class TtlStrategy(OddsStrategy):
    """Odds in Redis for `ttl_seconds`; an odds change is seen when the key expires."""

    name = "ttl"

    @property
    def staleness_window_ms(self) -> int:
        return self.ttl_seconds * 1000

    async def get(self, market_id: int, load: OddsLoader) -> OddsEntry | None:
        raw = await self.client.get(odds_key(market_id))
        if raw is not None:
            self.stats.hits += 1
            return OddsEntry.loads(raw)
        self.stats.misses += 1
        return await self._load_and_store(market_id, load)

    async def _load_and_store(self, market_id: int, load: OddsLoader) -> OddsEntry | None:
        entry = await self._load(market_id, load)
        if entry is not None:
            await self.client.set(odds_key(market_id), entry.dumps(), ex=self.ttl_seconds)
        return entry


class TtlBroadcastStrategy(TtlStrategy):
    """TTL, plus a delete on change by the writer and again by every node on the broadcast.

    The second delete removes odds that a reader loaded before the commit and stored after
    the writer's delete, so that race lasts at most until the broadcast arrives.
    """

    name = "ttl-broadcast"
    uses_pubsub = True

    @property
    def staleness_window_ms(self) -> int:
        return BROADCAST_WINDOW_MS

    async def invalidate(self, market_id: int) -> None:
        await self.client.delete(odds_key(market_id))

    async def on_invalidation(self, market_id: int) -> None:
        await self.client.delete(odds_key(market_id))


class XFetchStrategy(TtlStrategy):
    """TTL with probabilistic early recomputation (XFetch), so keys do not expire all at once.

    A reader recomputes before expiry when `now - load_ms * beta * ln(rand) >= expiry`, so
    the chance grows as expiry nears and with the cost of the load.
    """

    name = "xfetch"

    def __init__(self, client: AsyncRedis, ttl_seconds: int, stats: CacheStats, *, rng: random.Random | None = None) -> None:
        super().__init__(client, ttl_seconds, stats)
        self.rng = rng or random.Random()

    async def get(self, market_id: int, load: OddsLoader) -> OddsEntry | None:
        raw = await self.client.get(odds_key(market_id))
        if raw is not None:
            entry = OddsEntry.loads(raw)
            if not self._recompute_early(entry):
                self.stats.hits += 1
                return entry
            self.stats.early_recomputes += 1
        self.stats.misses += 1
        return await self._load_and_store(market_id, load)

    def _recompute_early(self, entry: OddsEntry) -> bool:
        # 1 - random() lies in (0, 1], so the logarithm is finite.
        gap_ms = -max(entry.load_ms, 1) * XFETCH_BETA * math.log(1.0 - self.rng.random())
        return now_ms() + gap_ms >= entry.expires_at_ms


class CoalesceStrategy(TtlBroadcastStrategy):
    """TTL with the writer's delete, and one database read per key in flight on this node.

    Readers that miss while a load of the same market runs wait for that load instead of
    querying the database themselves.
    """

    name = "coalesce"
    uses_pubsub = False

    def __init__(self, client: AsyncRedis, ttl_seconds: int, stats: CacheStats) -> None:
        super().__init__(client, ttl_seconds, stats)
        self._in_flight: dict[int, asyncio.Future[OddsEntry | None]] = {}

    @property
    def staleness_window_ms(self) -> int:
        # Every node sees the writer's delete at once because they share Redis. A reader
        # racing the delete can store the old odds, and they stay until the TTL ends.
        return self.ttl_seconds * 1000

    async def get(self, market_id: int, load: OddsLoader) -> OddsEntry | None:
        raw = await self.client.get(odds_key(market_id))
        if raw is not None:
            self.stats.hits += 1
            return OddsEntry.loads(raw)
        self.stats.misses += 1

        pending = self._in_flight.get(market_id)
        if pending is not None:
            self.stats.coalesced += 1
            return await asyncio.shield(pending)
        return await self._lead_load(market_id, load)

    async def _lead_load(self, market_id: int, load: OddsLoader) -> OddsEntry | None:
        future: asyncio.Future[OddsEntry | None] = asyncio.get_running_loop().create_future()
        self._in_flight[market_id] = future
        try:
            entry = await self._load_and_store(market_id, load)
        except BaseException as err:
            future.set_exception(err)
            future.exception()  # mark it retrieved when no reader waits
            raise
        else:
            future.set_result(entry)
            return entry
        finally:
            del self._in_flight[market_id]

    async def on_invalidation(self, market_id: int) -> None:
        return None


@dataclass
class _LocalEntry:
    entry: OddsEntry
    expires_at: float


class TwoTierStrategy(TtlStrategy):
    """A node-local copy in front of Redis, invalidated over pub/sub.

    The local tier is used only while the invalidation subscription is up. When that
    connection is lost the local tier is dropped whole and reads go to Redis until the
    subscription is back, because invalidations sent meanwhile are lost.
    """

    name = "two-tier"
    uses_pubsub = True

    def __init__(self, client: AsyncRedis, ttl_seconds: int, stats: CacheStats) -> None:
        super().__init__(client, ttl_seconds, stats)
        self._local: dict[int, _LocalEntry] = {}
        self.subscribed = False

    @property
    def staleness_window_ms(self) -> int:
        return BROADCAST_WINDOW_MS

    async def get(self, market_id: int, load: OddsLoader) -> OddsEntry | None:
        local = self._local.get(market_id)
        if local is not None and local.expires_at > time.monotonic():
            self.stats.hits += 1
            self.stats.local_hits += 1
            return local.entry

        entry = await super().get(market_id, load)
        if entry is not None and self.subscribed:
            self._local[market_id] = _LocalEntry(entry, time.monotonic() + self.ttl_seconds)
        return entry

    async def invalidate(self, market_id: int) -> None:
        self._local.pop(market_id, None)
        await self.client.delete(odds_key(market_id))

    async def on_invalidation(self, market_id: int) -> None:
        self._local.pop(market_id, None)

    def on_subscription_lost(self) -> None:
        self.subscribed = False
        dropped = len(self._local)
        self._local.clear()
        logger.warning("cache: invalidation subscription lost; dropped %d local odds entries", dropped)

    def on_subscribed(self) -> None:
        self._local.clear()
        self.subscribed = True


STRATEGIES: dict[str, type[OddsStrategy]] = {
    cls.name: cls for cls in (OddsStrategy, TtlStrategy, TtlBroadcastStrategy, XFetchStrategy, CoalesceStrategy, TwoTierStrategy)
}


def make_strategy(name: str, client: AsyncRedis, ttl_seconds: int, stats: CacheStats) -> OddsStrategy:
    """Return the strategy called `name`; raise CacheStrategyError naming the valid ones."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise CacheStrategyError(f"unknown cache strategy {name!r}: expected one of {', '.join(STRATEGIES)}") from None
    return cls(client, ttl_seconds, stats)
