"""Cached odds throughput against a bare Starlette endpoint served the same way.

Both apps run in one uvicorn process each, on loopback, with the same uvicorn settings,
and receive the same Locust load (closed model, no wait, `--users` users) for `--seconds`
seconds. Throughput is the server's own count of odds requests divided by the run time,
so the ratio does not depend on Locust's bookkeeping. The bare endpoint returns the same
JSON body from memory and checks nothing. The api authenticates the bearer token in the
cache and reads the odds through the chosen strategy.

    .venv/bin/python bench/bench_odds.py --strategy two-tier --seconds 20 --rounds 3

Both servers run for the whole benchmark and the rounds alternate between them. The
ratio reported is the median of the rounds' ratios. Prints one JSON object. Record the machine's load (`uptime`) with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from wagerlab.chain.accounts import dev_key
from wagerlab.platform.app import build_api_app
from wagerlab.platform.config import Deployment, PlatformConfig
from wagerlab.platform.db import Market, MarketOdds, create_tables, make_engine, write_session
from wagerlab.platform.quotes import WallClock
from wagerlab.sim.stack import free_port

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
ODDS = [1_800_000, 2_100_000]
ODDS_BODY = {"market_id": 1, "odds": ODDS, "version": 1, "updated_at": 0}


class BareCounter:
    requests = 0


def bare_app() -> Starlette:
    async def odds(request: Request) -> JSONResponse:
        BareCounter.requests += 1
        return JSONResponse(ODDS_BODY)

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({"requests": {"GET /api/markets/{market_id}/odds": BareCounter.requests}})

    return Starlette(routes=[Route("/api/markets/{market_id}/odds", odds), Route("/api/stats", stats)])


def api_app(workdir: Path, strategy: str, redis_url: str | None) -> Starlette:
    url = f"sqlite:///{workdir / 'bench.db'}"
    engine = make_engine(url)
    create_tables(engine)
    with write_session(engine) as session:
        market = Market(market_id=1, name="bench", outcomes=["a", "b"], status="open", closes_at=int(time.time()) + 3600, liability_cap=10**12)  # type: ignore[arg-type]
        session.add(market)
        session.flush()
        session.add(MarketOdds(market_id=1, odds=ODDS))
    deployment = Deployment(chain_id=1, token="0x" + "70" * 20, sportsbook="0x" + "5b" * 20, oracle="0x" + "0c" * 20, start_block=1)
    config = PlatformConfig(
        rpc_url="http://127.0.0.1:9", ws_url="ws://127.0.0.1:9", db_url=url, deployment=deployment,
        operator_key=dev_key(1), odds_signer_key=dev_key(2), guardian_key=dev_key(3), admin_token="bench-admin",
        cache_strategy=strategy, redis_url=redis_url,
    )  # fmt: skip
    return build_api_app(config, engine=engine, clock=WallClock())


def serve(app: Starlette) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def token_for(base: str) -> str:
    with httpx.Client(base_url=base, timeout=60) as client:
        body = {"username": "bench", "password": "bench password", "address": "0x" + "b1" * 20}
        client.post("/api/register", json=body).raise_for_status()
        response = client.post("/api/login", json={"username": "bench", "password": "bench password"})
        response.raise_for_status()
        return response.json()["token"]


def odds_count(base: str) -> int:
    return httpx.get(f"{base}/api/stats", timeout=30).json()["requests"].get("GET /api/markets/{market_id}/odds", 0)


def run_locust(base: str, token: str, users: int, seconds: int, workdir: Path) -> None:
    tokens = workdir / "tokens.json"
    tokens.write_text(json.dumps([token]))
    env = {**os.environ, "WAGERLAB_TOKENS_FILE": str(tokens), "WAGERLAB_MARKETS": "1", "WAGERLAB_RATE": "1000000", "WAGERLAB_USERS": str(users)}
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", base, "--users", str(users),
            "--spawn-rate", str(users), "--run-time", f"{seconds}s", "--only-summary", "ClosedModelUser"]  # fmt: skip
    with open(workdir / "locust.log", "ab") as log:
        subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)


def measure(base: str, token: str, users: int, seconds: int, workdir: Path) -> dict[str, Any]:
    """Drive the server at `base` from a Locust subprocess for `seconds` and return its requests/s."""
    before = odds_count(base)
    started = time.monotonic()
    run_locust(base, token, users, seconds, workdir)
    elapsed = time.monotonic() - started
    served = odds_count(base) - before
    # Locust sends only during its run time, so that is the denominator, not its start-up too.
    return {"requests": served, "seconds": seconds, "wall_seconds": round(elapsed, 1), "rate": round(served / seconds, 1)}


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="two-tier", help="cache strategy of the api (default: two-tier)")
    parser.add_argument("--seconds", type=int, default=20, help="Locust run time per app (default: 20)")
    parser.add_argument("--users", type=int, default=20, help="Locust users (default: 20)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/cached rounds; the ratio is their median (default: 3)")
    parser.add_argument("--redis", metavar="URL", help="Redis for the api's cache, e.g. redis://127.0.0.1:6379/13 (default: embedded fakeredis)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder with locust.log")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-odds-"))
    servers = []
    rounds: list[dict[str, Any]] = []
    try:
        # Both apps stay up for the whole run and the rounds alternate between them, so a
        # change in the machine's load falls on both alike.
        bare_server, bare_thread, bare_base = serve(bare_app())
        servers.append((bare_server, bare_thread))
        api_server, api_thread, api_base = serve(api_app(workdir, args.strategy, args.redis))
        servers.append((api_server, api_thread))
        token = token_for(api_base)
        for _ in range(args.rounds):
            bare = measure(bare_base, "unused", args.users, args.seconds, workdir)
            cached = measure(api_base, token, args.users, args.seconds, workdir)
            rounds.append({"bare": bare["rate"], "cached": cached["rate"], "ratio": round(cached["rate"] / bare["rate"], 3) if bare["rate"] else None})
    finally:
        for server, thread in servers:
            server.should_exit = True
            thread.join(timeout=10)
        if not args.keep:
            shutil.rmtree(workdir)
    ratios = [entry["ratio"] for entry in rounds if entry["ratio"] is not None]
    result = {
        "strategy": args.strategy,
        "redis": args.redis or "fakeredis",
        "users": args.users,
        "seconds_per_round": args.seconds,
        "rounds": rounds,
        "median_bare_rate": median([entry["bare"] for entry in rounds]),
        "median_cached_rate": median([entry["cached"] for entry in rounds]),
        "median_ratio": median(ratios) if ratios else None,
        "workdir": str(workdir) if args.keep else None,
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
