"""Redis behaviour the platform relies on, on the selected cache backend.

These run on fakeredis by default and on the Redis database `WAGERLAB_TEST_REDIS_URL`
names when it is set (CI runs both). They pin the points where fakeredis and Redis could
differ: expiry, pub/sub delivery, INCR with EXPIRE in one MULTI transaction, and Lua.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio

from wagerlab.platform.cache import PlatformCache
from wagerlab.sim.backends import clear_cache
from wagerlab.testing.backends import backend_names, new_redis_client, server_redis_url

pytestmark = pytest.mark.anyio

MESSAGE_TIMEOUT_SECONDS = 5.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client() -> AsyncIterator[redis.asyncio.Redis]:
    connection = await new_redis_client()
    yield connection
    await connection.aclose()


async def test_key_expires_after_px(client: redis.asyncio.Redis) -> None:
    await client.set("expiring", "1", px=150)
    assert await client.get("expiring") == b"1"
    assert 0 < await client.pttl("expiring") <= 150

    await asyncio.sleep(0.3)

    assert await client.get("expiring") is None
    assert await client.pttl("expiring") == -2


async def test_incr_and_expire_nx_in_multi(client: redis.asyncio.Redis) -> None:
    """The gateway's window counter: the first hit sets the expiry, later hits keep it."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.incr("window")
        pipe.expire("window", 60, nx=True)
        first = await pipe.execute()
    async with client.pipeline(transaction=True) as pipe:
        pipe.incr("window")
        pipe.expire("window", 5, nx=True)
        second = await pipe.execute()

    assert first == [1, True]
    assert second == [2, False]
    assert 5 < await client.ttl("window") <= 60


async def test_concurrent_incr_loses_nothing(client: redis.asyncio.Redis) -> None:
    await asyncio.gather(*(client.incr("counter") for _ in range(50)))

    assert int(await client.get("counter")) == 50


async def test_pubsub_delivers_to_subscriber(client: redis.asyncio.Redis) -> None:
    pubsub = client.pubsub()
    await pubsub.subscribe("odds-changes")
    confirmation = await pubsub.get_message(timeout=MESSAGE_TIMEOUT_SECONDS)
    assert confirmation is not None and confirmation["type"] == "subscribe"

    receivers = await client.publish("odds-changes", "market 7")
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=MESSAGE_TIMEOUT_SECONDS)
    await pubsub.aclose()

    assert receivers == 1
    assert message is not None
    assert message["data"] == b"market 7"


async def test_publish_without_subscriber(client: redis.asyncio.Redis) -> None:
    assert await client.publish("nobody-listens", "x") == 0


async def test_lua_script_only_on_redis(client: redis.asyncio.Redis) -> None:
    """fakeredis runs Lua only with `lupa` installed, so platform code must not use scripts."""
    script = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
    if backend_names()[1] == "redis":
        assert await client.eval(script, 1, "scripted", 5) == 5
        return
    with pytest.raises(redis.ResponseError):
        await client.eval(script, 1, "scripted", 5)


async def test_cache_token_expires(client: redis.asyncio.Redis) -> None:
    cache = PlatformCache(client, odds_ttl_seconds=30, token_ttl_seconds=1)
    await cache.store_token("digest-1", 42)
    assert await cache.user_for_token("digest-1") == 42

    await asyncio.sleep(2.1)

    assert await cache.user_for_token("digest-1") is None


@pytest.mark.skipif(server_redis_url() is None, reason="clear_cache connects by URL: set WAGERLAB_TEST_REDIS_URL")
async def test_clear_cache_keeps_other_keys(client: redis.asyncio.Redis) -> None:
    await client.set("odds:1", "x")
    await client.set("token:abc", "7")
    await client.set("gw:ip:1", "3")

    deleted = await asyncio.to_thread(clear_cache, server_redis_url())

    assert deleted == 2
    assert await client.get("odds:1") is None
    assert await client.get("token:abc") is None
    assert await client.get("gw:ip:1") == b"3"
