"""The api's cache of odds and auth tokens, in Redis or in the embedded fakeredis.

Odds are read through one of the strategies in `strategies.py`, chosen by
`PlatformConfig.cache_strategy`. Every odds change is announced on the `odds-changed`
pub/sub channel whatever the strategy, so each node can measure the staleness of the
reads it serves. Auth tokens are stored as their SHA-256 digest, so a leaked cache does
not leak tokens.

While Redis is unreachable the cache degrades instead of failing. Odds are read from the
database. Tokens are checked against the ones this process issued or has seen, and
`wagerlab.platform.auth` reads any other from the database. Odds
changes and new tokens that could not be written are kept in memory and written once the
pub/sub subscription is back. They are lost only if the process stops before then: the odds
themselves are in the database, but Redis then serves the old odds until their key expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import fakeredis
import redis.asyncio
import redis.exceptions

from wagerlab.platform.cache.outage import CacheOutage
from wagerlab.platform.cache.stats import CacheStats, Histogram
from wagerlab.platform.cache.strategies import (
    STRATEGIES,
    AsyncRedis,
    CacheStrategyError,
    OddsEntry,
    OddsLoader,
    OddsStrategy,
    make_strategy,
    now_ms,
    odds_key,
)
from wagerlab.platform.config import PlatformConfig
from wagerlab.platform.errors import ServiceUnavailableError

__all__ = [
    "STRATEGIES",
    "AsyncRedis",
    "CacheStats",
    "CacheUnavailableError",
    "CacheStrategyError",
    "Histogram",
    "OddsEntry",
    "OddsLoader",
    "ODDS_CHANNEL",
    "PlatformCache",
    "odds_key",
    "token_key",
]

logger = logging.getLogger(__name__)
CLOSE_TIMEOUT_SECONDS = 2.0

ODDS_CHANNEL = "odds-changed"
RESUBSCRIBE_DELAY_SECONDS = 0.5
TOKEN_MEMO_SECONDS = 60.0
TOKEN_MEMO_SIZE = 100_000
"""Tokens kept in process memory; the memo is emptied when full, which costs one Redis read each."""
KEPT_VERSIONS = 16
"""Versions of each market's odds remembered for staleness; older reads count from the oldest."""
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
"""Errors of a Redis that cannot be reached; the cache falls back instead of failing the request."""


def token_key(token_digest: str) -> str:
    return f"token:{token_digest}"


class StalenessTracker:
    """The times at which recent odds versions replaced older ones, from the broadcasts."""

    def __init__(self) -> None:
        self._changes: dict[int, dict[int, int]] = {}

    def record(self, market_id: int, version: int, changed_at_ms: int) -> None:
        versions = self._changes.setdefault(market_id, {})
        versions.setdefault(version, changed_at_ms)
        while len(versions) > KEPT_VERSIONS:
            del versions[min(versions)]

    def staleness_ms(self, market_id: int, version: int, at_ms: int) -> int:
        """Return how long before `at_ms` a newer version than `version` replaced it, or 0."""
        newer = [changed for known, changed in self._changes.get(market_id, {}).items() if known > version]
        return max(0, at_ms - min(newer)) if newer else 0


class CacheUnavailableError(ServiceUnavailableError):
    """Redis is unreachable, and this process cannot return the result without it."""


@dataclass(frozen=True)
class _KnownToken:
    user_id: int
    recheck_at: float
    """`time.monotonic()` after which Redis is asked again."""
    expires_at: float
    """`time.monotonic()` at which the token expires; used only while Redis is unreachable."""


class PlatformCache:
    """Odds through a caching strategy and auth tokens, over one redis.asyncio-compatible client."""

    def __init__(
        self,
        client: AsyncRedis,
        *,
        odds_ttl_seconds: int,
        token_ttl_seconds: int,
        strategy: str = "ttl-broadcast",
    ) -> None:
        self.client = client
        self.odds_ttl_seconds = odds_ttl_seconds
        self.token_ttl_seconds = token_ttl_seconds
        self.stats = CacheStats(strategy=strategy)
        self.strategy: OddsStrategy = make_strategy(strategy, client, odds_ttl_seconds, self.stats)
        self.staleness = StalenessTracker()
        self._listener: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()
        self._token_memo: dict[str, _KnownToken] = {}
        self.outage = CacheOutage(client)
        self._missed_changes: dict[int, tuple[int | None, int]] = {}
        """Odds changes Redis did not receive, by market: (version, changed_at_ms)."""
        self._unsaved_tokens: dict[str, tuple[int, float]] = {}
        """Tokens issued while Redis was unreachable: digest to (user id, expiry in `time.time()`)."""
        self._redis_down = False

    @classmethod
    def from_config(cls, config: PlatformConfig) -> PlatformCache:
        """Connect to `config.redis_url`, or start an embedded fakeredis when it is None."""
        client: AsyncRedis
        if config.redis_url is None:
            # An explicit server, so that `CacheOutage` can disconnect it.
            client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
            logger.info("cache: embedded fakeredis, strategy %s", config.cache_strategy)
        else:
            client = redis.asyncio.from_url(config.redis_url)
            logger.info("cache: redis at %s, strategy %s", config.redis_url, config.cache_strategy)
        return cls(
            client,
            odds_ttl_seconds=config.odds_ttl_seconds,
            token_ttl_seconds=config.token_ttl_seconds,
            strategy=config.cache_strategy,
        )

    async def start(self) -> None:
        """Subscribe to odds changes and wait for the first attempt to end (idempotent)."""
        self._ensure_listener()
        await self._first_attempt.wait()

    def _ensure_listener(self) -> None:
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="odds-invalidations")

    async def get_odds(self, market_id: int, load: OddsLoader) -> dict[str, Any] | None:
        """Return the odds of a market through the strategy, recording age and staleness."""
        await self.start()
        if market_id in self._missed_changes:
            # Redis may still hold the odds this change replaced, so it is not read until then.
            entry = await self._load_from_database(market_id, load)
        else:
            try:
                entry = await self.strategy.get(market_id, load)
            except REDIS_ERRORS as err:
                self._note_redis_down(err)
                self.stats.odds_fallbacks += 1
                entry = await self._load_from_database(market_id, load)
        if entry is None:
            return None

        served_at = now_ms()
        self.stats.odds_age.add(max(0, served_at - entry.loaded_at_ms))
        staleness = self.staleness.staleness_ms(market_id, entry.odds["version"], served_at)
        if staleness > 0:
            self.stats.stale_reads += 1
            self.stats.odds_staleness.add(staleness)
        return entry.odds

    async def invalidate_odds(self, market_id: int, version: int | None = None, changed_at_ms: int | None = None) -> None:
        """Apply and announce an odds change; call it after the database commit.

        NOTE: under `ttl` and `xfetch` nothing is deleted, so other nodes serve the old
        odds until their key expires. That is the promise those strategies make.
        """
        await self.start()
        changed_at = changed_at_ms if changed_at_ms is not None else now_ms()
        if version is not None:
            self.staleness.record(market_id, version, changed_at)
        try:
            await self._announce_change(market_id, version, changed_at)
        except REDIS_ERRORS as err:
            self._note_redis_down(err)
            self._missed_changes[market_id] = (version, changed_at)
            logger.warning("cache: odds change of market %s (version %s) is kept until Redis is reachable", market_id, version)

    async def _announce_change(self, market_id: int, version: int | None, changed_at: int) -> None:
        await self.strategy.invalidate(market_id)
        message = json.dumps({"market_id": market_id, "version": version, "changed_at_ms": changed_at})
        await self.client.publish(ODDS_CHANNEL, message)
        logger.debug("cache: odds of market %s changed to version %s", market_id, version)

    async def _load_from_database(self, market_id: int, load: OddsLoader) -> OddsEntry | None:
        started = now_ms()
        self.stats.db_reads += 1
        odds = await load(market_id)
        if odds is None:
            return None
        finished = now_ms()
        return OddsEntry(odds, loaded_at_ms=started, load_ms=finished - started, expires_at_ms=finished)

    async def store_token(self, token_digest: str, user_id: int) -> None:
        """Store a new token; while Redis is unreachable keep it in this process and write it later."""
        self._remember_token(token_digest, user_id, self.token_ttl_seconds)
        try:
            await self.client.set(token_key(token_digest), str(user_id), ex=self.token_ttl_seconds)
        except REDIS_ERRORS as err:
            self._note_redis_down(err)
            self.stats.token_fallbacks += 1
            self._unsaved_tokens[token_digest] = (user_id, time.time() + self.token_ttl_seconds)
            # The listener writes the token once it can subscribe again.
            self._ensure_listener()

    async def user_for_token(self, token_digest: str) -> int | None:
        """Return the user id a token digest maps to, or None when unknown or expired.

        Known tokens are also kept in this process until their Redis key expires (at most
        `TOKEN_MEMO_SECONDS`), because nothing revokes a token before its expiry and the
        Redis round trip would otherwise be half the cost of a cached odds read.
        """
        memo = self._token_memo.get(token_digest)
        if memo is not None and memo.recheck_at > time.monotonic():
            self.stats.token_hits += 1
            return memo.user_id

        key = token_key(token_digest)
        try:
            value, ttl_ms = await self.client.pipeline(transaction=False).get(key).pttl(key).execute()
        except REDIS_ERRORS as err:
            return self._known_user_while_down(token_digest, memo, err)
        if value is None:
            self._token_memo.pop(token_digest, None)
            self.stats.token_misses += 1
            return None
        self.stats.token_hits += 1
        user_id = int(value)
        if ttl_ms > 0:
            self._remember_token(token_digest, user_id, ttl_ms / 1000)
        return user_id

    def _remember_token(self, token_digest: str, user_id: int, ttl_seconds: float) -> None:
        if len(self._token_memo) >= TOKEN_MEMO_SIZE:
            self._token_memo.clear()
        now = time.monotonic()
        self._token_memo[token_digest] = _KnownToken(user_id, now + min(ttl_seconds, TOKEN_MEMO_SECONDS), now + ttl_seconds)

    def _known_user_while_down(self, token_digest: str, memo: _KnownToken | None, err: Exception) -> int:
        """Return the user of an unexpired token this process has seen; raise 503 otherwise."""
        self._note_redis_down(err)
        self.stats.token_fallbacks += 1
        if memo is not None and memo.expires_at > time.monotonic():
            return memo.user_id
        raise CacheUnavailableError("the session store (Redis) is unreachable and this token was not seen by this api process; try again in a few seconds")

    def count_request(self, route: str) -> None:
        self.stats.requests[route] += 1

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            # NOTE: redis-py's PubSub.aclose() can wait forever when the listener was
            # cancelled inside listen() (seen with redis 8.2 against a real server), so
            # the wait is bounded; on time-out wait_for cancels the listener again.
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._listener, timeout=CLOSE_TIMEOUT_SECONDS)
        await self.client.aclose()

    async def _listen(self) -> None:
        """Follow the odds channel, subscribing again after a lost connection."""
        while True:
            try:
                await self._follow_channel()
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as err:
                self.stats.subscription_losses += 1
                self.strategy.on_subscription_lost()
                logger.warning("cache: odds subscription lost (%s); subscribing again in %s s", err, RESUBSCRIBE_DELAY_SECONDS)
                # Readers wait only for the first attempt, never for a Redis that is down.
                self._first_attempt.set()
                await asyncio.sleep(RESUBSCRIBE_DELAY_SECONDS)

    async def _follow_channel(self) -> None:
        pubsub = self.client.pubsub()
        try:
            await pubsub.subscribe(ODDS_CHANNEL)
            self.strategy.on_subscribed()
            self._first_attempt.set()
            logger.info("cache: subscribed to %s", ODDS_CHANNEL)
            await self._write_missed()
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    await self._apply_change(message["data"])
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pubsub.aclose(), timeout=CLOSE_TIMEOUT_SECONDS)

    async def _write_missed(self) -> None:
        """Write the odds changes and tokens Redis missed while it was unreachable."""
        for market_id, change in list(self._missed_changes.items()):
            await self._announce_change(market_id, *change)
            # A newer change that failed while this one was sent stays for the next round.
            if self._missed_changes.get(market_id) == change:
                del self._missed_changes[market_id]
            self.stats.replayed_invalidations += 1
        for token_digest, (user_id, expires_at) in list(self._unsaved_tokens.items()):
            remaining = expires_at - time.time()
            if remaining > 0:
                await self.client.set(token_key(token_digest), str(user_id), ex=math.ceil(remaining))
            del self._unsaved_tokens[token_digest]
            self.stats.replayed_tokens += 1
        if self._redis_down:
            self._redis_down = False
            logger.warning(
                "cache: Redis is reachable again; %d odds changes and %d tokens written so far",
                self.stats.replayed_invalidations,
                self.stats.replayed_tokens,
            )

    def _note_redis_down(self, err: Exception) -> None:
        if not self._redis_down:
            self._redis_down = True
            logger.warning("cache: Redis is unreachable (%s); reading odds from the database until it is back", err)

    async def simulate_outage(self, seconds: float) -> None:
        """Make Redis unreachable for `seconds` (see `CacheOutage`) and follow the odds channel anew."""
        await self.outage.start(seconds)
        # Invalidations cannot arrive now, so local copies go at once, not when the listener notices.
        self.strategy.on_subscription_lost()
        if self._listener is not None:
            # fakeredis keeps an open subscription alive, so the listener subscribes again.
            self._listener.cancel()
            self._listener = None
        self._ensure_listener()

    def outage_report(self) -> dict[str, Any]:
        """Return the simulated outages' state and what the cache did without Redis."""
        return {
            "backend": self.outage.backend,
            "active": self.outage.active,
            "outages": self.outage.count,
            "pending": len(self._missed_changes) + len(self._unsaved_tokens),
            "odds_fallbacks": self.stats.odds_fallbacks,
            "token_fallbacks": self.stats.token_fallbacks,
            "replayed_invalidations": self.stats.replayed_invalidations,
            "replayed_tokens": self.stats.replayed_tokens,
        }

    async def _apply_change(self, data: bytes) -> None:
        try:
            change = json.loads(data)
            market_id = int(change["market_id"])
        except (ValueError, KeyError, TypeError) as err:
            logger.warning("cache: ignored a malformed odds change %r: %s", data[:200], err)
            return
        self.stats.invalidations_received += 1
        if change.get("version") is not None:
            self.staleness.record(market_id, int(change["version"]), int(change["changed_at_ms"]))
        await self.strategy.on_invalidation(market_id)
