"""Fan-out of odds changes to many WebSocket subscribers of the odds stream.

Serves the stream app with uvicorn in a thread, connects `--clients` subscribers to one
market from this process, plus `--stalled` clients that subscribe and then never read.
Each odds change is published over (fake) Redis pub/sub, and the delay until every reading
client has it is recorded. Stalled clients must not delay the others; the hub drops them
once their queue overflows, which a short run with small messages may not reach.

    .venv/bin/python bench/bench_odds_stream.py --clients 1000 --changes 20

Prints one JSON object. Record the machine's load (`uptime`) with the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import fakeredis
import uvicorn
import websockets

from wagerlab.chain.accounts import dev_key
from wagerlab.platform.cache import PlatformCache
from wagerlab.platform.config import Deployment, PlatformConfig
from wagerlab.platform.db import Market, MarketOdds, create_tables, make_engine, write_session
from wagerlab.platform.stream import build_stream_app
from wagerlab.sim.stack import free_port

def _database(workdir: Path) -> tuple[str, Any]:
    url = f"sqlite:///{workdir / 'stream.db'}"
    engine = make_engine(url)
    create_tables(engine)
    with write_session(engine) as session:
        session.add(Market(market_id=1, name="bench", outcomes=["a", "b"], status="open", closes_at=int(time.time()) + 3600, liability_cap=10**12))  # type: ignore[arg-type]
        session.flush()
        session.add(MarketOdds(market_id=1, odds=[1_800_000, 2_100_000]))
    return url, engine


def _serve(url: str, engine: Any, server: fakeredis.FakeServer) -> tuple[uvicorn.Server, threading.Thread, str]:
    deployment = Deployment(chain_id=1, token="0x" + "70" * 20, sportsbook="0x" + "5b" * 20, oracle="0x" + "0c" * 20, start_block=1)
    config = PlatformConfig(
        rpc_url="http://127.0.0.1:9", ws_url="ws://127.0.0.1:9", db_url=url, deployment=deployment,
        operator_key=dev_key(1), odds_signer_key=dev_key(2), guardian_key=dev_key(3), admin_token="bench",
    )  # fmt: skip
    cache = PlatformCache(fakeredis.FakeAsyncRedis(server=server), odds_ttl_seconds=30, token_ttl_seconds=60)
    port = free_port()
    uvicorn_server = uvicorn.Server(uvicorn.Config(build_stream_app(config, engine=engine, cache=cache), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    while not uvicorn_server.started:
        time.sleep(0.05)
    return uvicorn_server, thread, f"ws://127.0.0.1:{port}/stream"


async def _subscribe(url: str) -> Any:
    socket = await websockets.connect(url, max_queue=None)
    await socket.send(json.dumps({"op": "subscribe", "markets": [1]}))
    await socket.recv()
    await socket.recv()
    return socket


async def _wait_for_version(socket: Any, version: int) -> float:
    while True:
        message = json.loads(await socket.recv())
        if message.get("version", 0) >= version:
            return time.monotonic()


async def _run(url: str, engine: Any, redis_server: fakeredis.FakeServer, clients: int, stalled: int, changes: int) -> dict[str, Any]:
    readers = []
    for start in range(0, clients, 100):
        readers += await asyncio.gather(*(_subscribe(url) for _ in range(start, min(clients, start + 100))))
    sleepers = [await _subscribe(url) for _ in range(stalled)]
    publisher = PlatformCache(fakeredis.FakeAsyncRedis(server=redis_server), odds_ttl_seconds=30, token_ttl_seconds=60)

    delays_ms: list[float] = []
    for version in range(2, changes + 2):
        with write_session(engine) as session:
            row = session.get(MarketOdds, 1)
            row.odds = [1_800_000 + version, 2_100_000]  # type: ignore[union-attr]
            row.version = version  # type: ignore[union-attr]
            session.add(row)
        sent = time.monotonic()
        await publisher.invalidate_odds(1, version)
        arrivals = await asyncio.gather(*(_wait_for_version(socket, version) for socket in readers))
        delays_ms.append((max(arrivals) - sent) * 1000)

    await publisher.close()
    await asyncio.gather(*(socket.close() for socket in readers + sleepers), return_exceptions=True)
    return {
        "clients": clients,
        "stalled": stalled,
        "changes": changes,
        "all_delivered_ms_p50": round(statistics.median(delays_ms), 1),
        "all_delivered_ms_max": round(max(delays_ms), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000, help="reading subscribers (default: 1000)")
    parser.add_argument("--stalled", type=int, default=5, help="subscribers that never read (default: 5)")
    parser.add_argument("--changes", type=int, default=20, help="odds changes to publish (default: 20)")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.clients + 256)), hard))
    redis_server = fakeredis.FakeServer()
    url, engine = _database(Path(tempfile.mkdtemp(prefix="bench-stream-")))
    server, thread, ws_url = _serve(url, engine, redis_server)
    try:
        result = asyncio.run(_run(ws_url, engine, redis_server, args.clients, args.stalled, args.changes))
        result["hub"] = server.config.app.state.stream.hub.stats.to_json()  # type: ignore[attr-defined]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    result["load_average"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
