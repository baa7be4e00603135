"""Window counters and flags in Redis (or fakeredis) for rate limits and lockouts.

Every counter is incremented and given its expiry in one MULTI transaction
(`INCR` then `EXPIRE key window NX`), so no crash or race between the two commands can
leave a counter without an expiry. fakeredis runs the same transaction; it has no Lua
interpreter unless `lupa` is installed, which is why this does not use a script.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

REDIS_UNREACHABLE: Final = (RedisConnectionError, RedisTimeoutError)
"""The errors of a Redis that cannot be reached, as opposed to a command Redis rejected."""


class GatewayRedis(Protocol):
    """The part of the redis.asyncio client the gateway uses (fakeredis has the same)."""

    def pipeline(self, transaction: bool = True) -> Any: ...

    async def get(self, name: str) -> bytes | None: ...

    async def set(self, name: str, value: str, ex: int | None = None, nx: bool = False) -> Any: ...

    async def delete(self, *names: str) -> int: ...

    async def ttl(self, name: str) -> int: ...

    async def aclose(self) -> None: ...


class WindowCounters:
    """Counters and flags under one key prefix, so several runs can share a Redis database."""

    def __init__(self, redis: GatewayRedis, prefix: str = "gw:") -> None:
        self.redis = redis
        self.prefix = prefix

    def key(self, name: str) -> str:
        return self.prefix + name

    async def hit(self, name: str, window_seconds: int) -> int:
        """Count one event in the window that started at the counter's first event; return the count."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(self.key(name))
            pipe.expire(self.key(name), window_seconds, nx=True)
            count, _ = await pipe.execute()
        return int(count)

    async def release(self, name: str, window_seconds: int) -> int:
        """Take back one event counted by `hit`, keeping (or giving) the counter an expiry.

        A counter whose window ended meanwhile would go below zero; it is deleted instead,
        so that it cannot grant extra events in the next window.
        """
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.decr(self.key(name))
            pipe.expire(self.key(name), window_seconds, nx=True)
            count, _ = await pipe.execute()
        if int(count) < 0:
            await self.redis.delete(self.key(name))
            return 0
        return int(count)

    async def count(self, name: str) -> int:
        value = await self.redis.get(self.key(name))
        return 0 if value is None else int(value)

    async def set_flag(self, name: str, value: str, ttl_seconds: int | None = None) -> bool:
        """Set a flag unless it is set already; return whether this call set it."""
        return bool(await self.redis.set(self.key(name), value, ex=ttl_seconds, nx=True))

    async def flag(self, name: str) -> str | None:
        value = await self.redis.get(self.key(name))
        return None if value is None else value.decode()

    async def ttl(self, name: str) -> int:
        return int(await self.redis.ttl(self.key(name)))

    async def delete(self, *names: str) -> int:
        return int(await self.redis.delete(*(self.key(name) for name in names)))
