"""`wagerlab up --nodes 2`: two api processes on one database and one real Redis.

Uses Redis database 12 at 127.0.0.1:6379, which this test owns, and is skipped when that
server is unreachable.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import websockets

from wagerlab.sim.up import Platform, UpError, UpOptions, check_options, start_platform

REDIS_URL = "redis://127.0.0.1:6379/12"
ALICE = "0x" + "a1" * 20


def _redis_reachable() -> bool:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        return True
    except redis.ConnectionError:
        return False


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    if not _redis_reachable():
        pytest.skip(f"no Redis at {REDIS_URL}: several nodes need a real Redis server")
    run_dir: Path = tmp_path_factory.mktemp("up")
    started = start_platform(UpOptions(run_dir=run_dir, nodes=2, redis_url=REDIS_URL, strategy="two-tier"))
    yield started
    started.stop()


def _admin(platform: Platform) -> dict[str, str]:
    return {"Authorization": f"Bearer {platform.config.admin_token}"}


def _login(api: str) -> dict[str, str]:
    with httpx.Client(base_url=api, timeout=30) as client:
        client.post("/api/register", json={"username": "alice", "password": "correct horse", "address": ALICE})
        token = client.post("/api/login", json={"username": "alice", "password": "correct horse"}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def _create_market(platform: Platform, market_id: int) -> None:
    closes_at = int(time.time()) + 3600
    body = {
        "market_id": market_id,
        "name": "main event",
        "outcomes": ["red", "blue"],
        "closes_at": closes_at,
        "liability_cap": 1_000_000_000,
        "odds": [1_800_000, 2_100_000],
    }
    response = httpx.post(f"{platform.api_urls[0]}/api/admin/markets", json=body, headers=_admin(platform), timeout=60)
    assert response.status_code == 201, response.text


@pytest.mark.slow
def test_up_prints_every_url(platform: Platform) -> None:
    urls = platform.urls()

    assert len(urls["api"]) == 2
    assert urls["api"][0] != urls["api"][1]
    assert str(urls["stream"]).startswith("ws://127.0.0.1:")
    for api in platform.api_urls:
        assert httpx.get(f"{api}/api/health", timeout=10).json() == {"status": "ok"}


@pytest.mark.slow
def test_odds_change_reaches_other_node(platform: Platform) -> None:
    _create_market(platform, 1)
    headers = _login(platform.api_urls[0])
    first, second = platform.api_urls
    before = httpx.get(f"{second}/api/markets/1/odds", headers=headers, timeout=10).json()
    httpx.get(f"{second}/api/markets/1/odds", headers=headers, timeout=10)

    changed = httpx.put(f"{first}/api/admin/markets/1/odds", json={"odds": [1_700_000, 2_300_000]}, headers=_admin(platform), timeout=10)
    changed_at = time.monotonic()
    while True:
        after = httpx.get(f"{second}/api/markets/1/odds", headers=headers, timeout=10).json()
        if after["version"] == changed.json()["version"] or time.monotonic() - changed_at > 5:
            break
        time.sleep(0.02)
    seen_after = time.monotonic() - changed_at
    stats = httpx.get(f"{second}/api/stats", timeout=10).json()

    assert before["version"] == 1
    assert after["odds"] == [1_700_000, 2_300_000]
    assert seen_after <= 1.0  # the two-tier strategy promises the broadcast window, 1 s
    assert stats["strategy"] == "two-tier"
    assert stats["local_hits"] >= 1
    assert stats["invalidations_received"] >= 1


@pytest.mark.slow
def test_stream_sees_odds_change(platform: Platform) -> None:
    _create_market(platform, 2)

    async def follow() -> dict[str, object]:
        async with websockets.connect(platform.config.stream_url) as socket:
            await socket.send(json.dumps({"op": "subscribe", "markets": [2]}))
            await socket.recv()
            await socket.recv()  # the snapshot
            await asyncio.to_thread(
                httpx.put,
                f"{platform.api_urls[1]}/api/admin/markets/2/odds",
                json={"odds": [1_600_000, 2_400_000]},
                headers=_admin(platform),
                timeout=10,
            )
            return json.loads(await asyncio.wait_for(socket.recv(), 10))

    update = asyncio.run(follow())

    assert update["type"] == "odds"
    assert update["odds"] == [1_600_000, 2_400_000]


@pytest.mark.slow
def test_odds_served_without_chainapi(platform: Platform) -> None:
    # Runs after the tests above because it stops chainapi for the rest of the module.
    headers = _login(platform.api_urls[0])
    chainapi = next(process for process in platform.stack.processes if process.name == "chainapi")
    chainapi.stop()

    reads = [httpx.get(f"{api}/api/markets/1/odds", headers=headers, timeout=10) for api in platform.api_urls]
    quote = httpx.post(f"{platform.api_urls[0]}/api/quotes", json={"market_id": 1, "outcome": 0, "stake": 1_000_000}, headers=headers, timeout=30)

    assert chainapi.exit_code() is not None
    assert [read.status_code for read in reads] == [200, 200]
    assert quote.status_code == 200, quote.text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (UpOptions(run_dir=Path("x"), nodes=2), "--nodes 2 needs a shared Redis"),
        (UpOptions(run_dir=Path("x"), nodes=0), "--nodes must be at least 1, got 0"),
        (UpOptions(run_dir=Path("x"), strategy="lru"), "unknown cache strategy 'lru'"),
        (UpOptions(run_dir=Path("x"), odds_ttl_seconds=0), "TTL must be at least 1 s"),
    ],
)
def test_up_rejects_bad_options(options: UpOptions, message: str) -> None:
    with pytest.raises(UpError, match=message):
        check_options(options)
