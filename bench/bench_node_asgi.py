"""Measure the chain node's HTTP handling without a network: the ASGI app is called
directly, once through the plain-ASGI `POST /` fast path and once through Starlette's
routing and Request/Response objects, in the same process and run.

The method is `eth_chainId`, which costs py-evm nothing, so the numbers are the server's
own overhead per request: JSON parsing, the hop to the node's worker thread, encoding and
ASGI messages. CPU time is reported next to wall time because CPU time moves less with
load from other processes.

Usage: .venv/bin/python bench/bench_node_asgi.py [--count 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp

from wagerlab.chain.node import Node
from wagerlab.chain.server import build_app

BODY = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "POST",
    "scheme": "http",
    "path": "/",
    "raw_path": b"/",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"content-type", b"application/json")],
    "client": ("127.0.0.1", 1),
    "server": ("127.0.0.1", 2),
}


async def call_once(app: ASGIApp) -> None:
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"the node returned HTTP {message['status']}")

    await app(dict(SCOPE), receive, send)


async def measure(app: ASGIApp, count: int) -> tuple[float, float]:
    """Return microseconds of wall time and of CPU time per request."""
    for _ in range(200):
        await call_once(app)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        await call_once(app)
    return (time.perf_counter() - wall) / count * 1e6, (time.process_time() - cpu) / count * 1e6


async def main(count: int, rounds: int) -> None:
    fast = build_app(Node())
    server = fast.state.rpc_server
    server.hub()
    routed = Starlette(routes=[Route("/", server.http_endpoint, methods=["POST"])])
    results: dict[str, list[tuple[float, float]]] = {"fast path (plain ASGI)": [], "Starlette route": []}
    for _ in range(rounds):
        results["fast path (plain ASGI)"].append(await measure(fast, count))
        results["Starlette route"].append(await measure(routed, count))
    server.close()

    print(f"{count} eth_chainId requests per mode and round, {rounds} rounds, median per request")
    print(f"{'mode':<24} {'wall us':>8} {'cpu us':>8}")
    for mode, values in results.items():
        walls = sorted(value[0] for value in values)
        cpus = sorted(value[1] for value in values)
        print(f"{mode:<24} {walls[len(walls) // 2]:>8.1f} {cpus[len(cpus) // 2]:>8.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000, help="requests per mode and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the modes take turns in each")
    args = parser.parse_args()
    asyncio.run(main(args.count, args.rounds))
