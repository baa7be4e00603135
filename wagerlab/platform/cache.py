"""The api's cache of odds and auth tokens, in Redis or in the embedded fakeredis.

Odds are read through the cache: a miss loads the `odds` row and stores it for
`odds_ttl_seconds`, and an odds change deletes the key after the database commit. Auth
tokens are stored as their SHA-256 digest, so a leaked cache does not leak tokens.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import fakeredis
import redis.asyncio

from wagerlab.platform.config import PlatformConfig

logger = logging.getLogger(__name__)

OddsLoader = Callable[[int], Awaitable[dict[str, Any] | None]]
"""Reads the odds of one market from the database; None when the market has none."""


class AsyncRedis(Protocol):
    """The part of the redis.asyncio client this cache uses (fakeredis has the same)."""

    async def get(self, name: str) -> bytes | None: ...

    async def set(self, name: str, value: str, ex: int | None = None) -> Any: ...

    async def delete(self, *names: str) -> int: ...

    async def aclose(self) -> None: ...


@dataclass
class CacheStats:
    """Counters the runner compares with its own count of requests.

    `hits`, `misses` and `db_reads` count odds lookups only; token lookups are counted
    apart so that they do not hide the odds numbers.
    """

    hits: int = 0
    misses: int = 0
    db_reads: int = 0
    token_hits: int = 0
    token_misses: int = 0
    requests: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "db_reads": self.db_reads,
            "token_hits": self.token_hits,
            "token_misses": self.token_misses,
            "requests": dict(sorted(self.requests.items())),
        }


def odds_key(market_id: int) -> str:
    return f"odds:{market_id}"


def token_key(token_digest: str) -> str:
    return f"token:{token_digest}"


class PlatformCache:
    """Odds and auth tokens over one redis.asyncio-compatible client."""

    def __init__(self, client: AsyncRedis, *, odds_ttl_seconds: int, token_ttl_seconds: int) -> None:
        self.client = client
        self.odds_ttl_seconds = odds_ttl_seconds
        self.token_ttl_seconds = token_ttl_seconds
        self.stats = CacheStats()

    @classmethod
    def from_config(cls, config: PlatformConfig) -> PlatformCache:
        """Connect to `config.redis_url`, or start an embedded fakeredis when it is None."""
        client: AsyncRedis
        if config.redis_url is None:
            client = fakeredis.FakeAsyncRedis()
            logger.info("cache: embedded fakeredis")
        else:
            client = redis.asyncio.from_url(config.redis_url)
            logger.info("cache: redis at %s", config.redis_url)
        return cls(client, odds_ttl_seconds=config.odds_ttl_seconds, token_ttl_seconds=config.token_ttl_seconds)

    async def get_odds(self, market_id: int, load: OddsLoader) -> dict[str, Any] | None:
        """Return the cached odds of a market, loading and storing them on a miss."""
        key = odds_key(market_id)
        cached = await self.client.get(key)
        if cached is not None:
            self.stats.hits += 1
            return json.loads(cached)

        self.stats.misses += 1
        self.stats.db_reads += 1
        odds = await load(market_id)
        if odds is not None:
            await self.client.set(key, json.dumps(odds), ex=self.odds_ttl_seconds)
        return odds

    async def invalidate_odds(self, market_id: int) -> None:
        """Delete the cached odds; call it after the database commit of an odds change.

        NOTE: a reader that loaded the old row before the commit and stores it after this
        delete leaves stale odds cached for up to `odds_ttl_seconds`, and quotes signed
        in that time carry the previous odds.
        """
        await self.client.delete(odds_key(market_id))
        logger.debug("cache: deleted odds of market %s", market_id)

    async def store_token(self, token_digest: str, user_id: int) -> None:
        await self.client.set(token_key(token_digest), str(user_id), ex=self.token_ttl_seconds)

    async def user_for_token(self, token_digest: str) -> int | None:
        """Return the user id a token digest maps to, or None when unknown or expired."""
        value = await self.client.get(token_key(token_digest))
        if value is None:
            self.stats.token_misses += 1
            return None
        self.stats.token_hits += 1
        return int(value)

    def count_request(self, route: str) -> None:
        self.stats.requests[route] += 1

    async def close(self) -> None:
        await self.client.aclose()
