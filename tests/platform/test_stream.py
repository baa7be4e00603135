"""The odds stream: fan-out, dropping slow or dead clients, odds and bet status over WebSocket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import websockets
from api_fixtures import ServerThread, add_market, make_config
from sqlalchemy.engine import Engine
from sqlmodel import select

from wagerlab.platform.auth import token_digest
from wagerlab.platform.cache import PlatformCache
from wagerlab.platform.db import Bet, BetStatus, MarketOdds, User, create_tables, make_engine, write_session
from wagerlab.platform.stream import StreamHub, build_stream_app
from wagerlab.platform.stream import hub as hub_module

ALICE = "0x" + "a1" * 20
SUBSCRIBERS = 200

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Recorder:
    """A client's send side that records messages, or blocks forever when `stalled`."""

    def __init__(self, stalled: bool = False) -> None:
        self.messages: list[dict[str, Any]] = []
        self.stalled = stalled
        self.closed_with: int | None = None

    async def send_text(self, text: str) -> None:
        if self.stalled:
            await asyncio.Event().wait()
        self.messages.append(json.loads(text))

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = code


async def test_hub_drops_slow_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_module, "QUEUE_SIZE", 8)
    hub = StreamHub()
    fast, slow = Recorder(), Recorder(stalled=True)
    fast_subscriber = hub.connect(fast.send_text, fast.close)
    slow_subscriber = hub.connect(slow.send_text, slow.close)
    fast_subscriber.markets.add(1)
    slow_subscriber.markets.add(1)

    for version in range(50):
        hub.publish_market(1, {"version": version})
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)

    assert [message["version"] for message in fast.messages] == list(range(50))
    assert slow_subscriber.dropped
    assert slow.closed_with == hub_module.CLOSE_CODE_SLOW
    assert hub.stats.dropped["slow"] == 1
    assert hub.stats.subscribers == 1
    await hub.disconnect(fast_subscriber)


async def test_hub_drops_dead_client() -> None:
    hub = StreamHub()

    async def broken_send(text: str) -> None:
        raise ConnectionError("peer reset the connection")

    dead = hub.connect(broken_send, Recorder().close)
    alive_recorder = Recorder()
    alive = hub.connect(alive_recorder.send_text, alive_recorder.close)
    dead.markets.add(7)
    alive.markets.add(7)

    hub.publish_market(7, {"version": 2})
    await asyncio.sleep(0.05)
    delivered = hub.publish_market(7, {"version": 3})
    await asyncio.sleep(0.05)

    assert dead.dropped
    assert hub.stats.dropped["send_failed"] == 1
    assert delivered == 1
    assert [message["version"] for message in alive_recorder.messages] == [2, 3]
    await hub.disconnect(alive)


async def test_hub_routes_by_market_and_bettor() -> None:
    hub = StreamHub()
    first, second = Recorder(), Recorder()
    one = hub.connect(first.send_text, first.close)
    two = hub.connect(second.send_text, second.close)
    one.markets.add(1)
    two.markets.add(2)
    two.bettor = ALICE

    assert hub.publish_market(1, {"market": 1}) == 1
    assert hub.publish_bettor(ALICE, {"bet": 5}) == 1
    assert hub.publish_market(3, {"market": 3}) == 0
    await asyncio.sleep(0.02)

    assert first.messages == [{"market": 1}]
    assert second.messages == [{"bet": 5}]
    await hub.disconnect(one)
    await hub.disconnect(two)


@pytest.fixture
def stream_server(tmp_path: Path) -> Iterator[tuple[str, Engine, fakeredis.FakeServer]]:
    url = f"sqlite:///{tmp_path / 'platform.db'}"
    engine = make_engine(url)
    create_tables(engine)
    add_market(engine, 1, [1_800_000, 2_100_000])
    add_market(engine, 2, [1_500_000, 3_000_000])
    redis_server = fakeredis.FakeServer()
    cache = PlatformCache(fakeredis.FakeAsyncRedis(server=redis_server), odds_ttl_seconds=30, token_ttl_seconds=60)
    server = ServerThread(build_stream_app(make_config(url), engine=engine, cache=cache), "stream")
    base = server.start()
    yield base.replace("http://", "ws://") + "/stream", engine, redis_server
    server.stop()


async def _receive(socket: Any) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(socket.recv(), 10))


async def _receive_type(socket: Any, kind: str) -> dict[str, Any]:
    while True:
        message = await _receive(socket)
        if message["type"] == kind:
            return message


def _change_odds(engine: Engine, market_id: int, odds: list[int]) -> int:
    with write_session(engine) as session:
        row = session.get(MarketOdds, market_id)
        assert row is not None
        row.odds = odds
        row.version += 1
        session.add(row)
        return row.version


async def test_stream_subscribe_sends_snapshot(stream_server: tuple[str, Engine, fakeredis.FakeServer]) -> None:
    url, _, _ = stream_server
    async with websockets.connect(url) as socket:
        await socket.send(json.dumps({"op": "subscribe", "markets": [1, 99]}))

        subscribed = await _receive(socket)
        snapshot = await _receive(socket)

    assert subscribed == {"type": "subscribed", "markets": [1, 99]}
    assert snapshot["type"] == "odds"
    assert snapshot["odds"] == [1_800_000, 2_100_000]


@pytest.mark.parametrize(
    ("message", "detail"),
    [
        ("not json", "expected JSON with an `op`"),
        (json.dumps({"op": "dance"}), "unknown op 'dance'"),
        (json.dumps({"op": "subscribe", "markets": "1"}), "`markets` must be a list"),
        (json.dumps({"op": "subscribe", "markets": [True]}), "`markets` must be a list"),
        (json.dumps({"op": "auth", "token": "nope"}), "token is unknown or expired"),
    ],
)
async def test_stream_rejects_bad_messages(stream_server: tuple[str, Engine, fakeredis.FakeServer], message: str, detail: str) -> None:
    url, _, _ = stream_server
    async with websockets.connect(url) as socket:
        await socket.send(message)
        reply = await _receive(socket)

    assert reply["type"] == "error"
    assert detail in reply["detail"]


async def test_stream_fans_out_odds_change(stream_server: tuple[str, Engine, fakeredis.FakeServer]) -> None:
    url, engine, redis_server = stream_server
    publisher = PlatformCache(fakeredis.FakeAsyncRedis(server=redis_server), odds_ttl_seconds=30, token_ttl_seconds=60)
    sockets = [await websockets.connect(url) for _ in range(SUBSCRIBERS)]
    try:
        for socket in sockets:
            await socket.send(json.dumps({"op": "subscribe", "markets": [1]}))
        await asyncio.gather(*(_receive_type(socket, "odds") for socket in sockets))

        version = _change_odds(engine, 1, [1_700_000, 2_300_000])
        await publisher.invalidate_odds(1, version)
        updates = await asyncio.gather(*(_receive_type(socket, "odds") for socket in sockets))
    finally:
        await asyncio.gather(*(socket.close() for socket in sockets))
        await publisher.close()

    assert len(updates) == SUBSCRIBERS
    assert all(update["version"] == version for update in updates)
    assert all(update["odds"] == [1_700_000, 2_300_000] for update in updates)


async def test_stream_pushes_bet_status(stream_server: tuple[str, Engine, fakeredis.FakeServer]) -> None:
    url, engine, redis_server = stream_server
    with write_session(engine) as session:
        session.add(User(username="alice", password_hash="x", address=ALICE))
    with write_session(engine) as session:
        user_id = session.exec(select(User.id)).one()
        bet = Bet(bet_id=5, bettor=ALICE, market_id=1, outcome=0, stake=10, odds=2_000_000, payout=20, nonce="1", tx_hash="0x" + "ab" * 32, block_number=3)
        session.add(bet)
    tokens = fakeredis.FakeAsyncRedis(server=redis_server)
    await tokens.set(f"token:{token_digest('alice-token')}", str(user_id))

    async with websockets.connect(url) as socket:
        await socket.send(json.dumps({"op": "auth", "token": "alice-token"}))
        authenticated = await _receive(socket)
        opened = await _receive_type(socket, "bet")
        with write_session(engine) as session:
            row = session.get(Bet, 5)
            assert row is not None
            row.status = BetStatus.WON
            session.add(row)
        won = await _receive_type(socket, "bet")
    await tokens.aclose()

    assert authenticated == {"type": "authenticated", "bettor": ALICE}
    assert (opened["bet_id"], opened["status"]) == (5, "open")
    assert (won["bet_id"], won["status"], won["payout"]) == (5, "won", 20)
