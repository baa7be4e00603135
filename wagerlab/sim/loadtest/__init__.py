"""`wagerlab loadtest`: start the platform, run Locust against it, compare Locust with the api.

For each strategy the run starts a fresh platform (`wagerlab.sim.up`), creates markets and
bettors with funded wallets, then runs Locust headless as a subprocess for `duration`
seconds. Meanwhile one thread changes odds and requests quotes, and another places bets on
chain through the api. It writes DIR/loadtest.json and DIR/loadtest.html; with several
strategies each gets DIR/NAME/ and DIR/ gets the comparison.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from wagerlab.platform.cache.strategies import STRATEGIES
from wagerlab.sim.loadtest import report
from wagerlab.sim.loadtest.bets import BetSetupError, BetTraffic, fund_bettors
from wagerlab.sim.loadtest.traffic import ODDS_ROUTE, BackgroundTraffic, StatsSampler, fetch_stats, set_up
from wagerlab.sim.up import Platform, UpOptions, start_platform

logger = logging.getLogger(__name__)

LOCUSTFILE = Path(__file__).resolve().parents[3] / "loadtests" / "locustfile.py"
LOCUST_ROW_NAME = "/api/markets/[id]/odds"
MODELS = {"closed": "ClosedModelUser", "open": "OpenModelUser"}
FIGHT_NIGHT_RATE = 50_000 / 60
"""50,000 odds queries a minute, about 833 a second."""


class LoadTestError(Exception):
    """Locust failed, or the options cannot run."""


@dataclass(frozen=True)
class LoadTestOptions:
    strategy: str
    rate: float
    duration: int
    out: Path
    users: int = 50
    workers: int = 0
    """Local Locust worker processes (`--processes`); 0 runs Locust in one process."""
    model: str = "closed"
    markets: int = 8
    bettors: int = 10
    odds_ttl_seconds: int = 30
    odds_change_interval: float = 1.0
    quote_interval: float = 0.1
    bet_interval: float = 0.4
    """Seconds between bets placed on chain. At 0.4 a 30 s run places about 75 bets."""
    redis_url: str | None = None
    db_url: str | None = None


def check_options(options: LoadTestOptions) -> None:
    """Raise LoadTestError naming the bad option and the valid range."""
    if options.strategy != "all" and options.strategy not in STRATEGIES:
        raise LoadTestError(f"unknown strategy {options.strategy!r}: expected all or one of {', '.join(STRATEGIES)}")
    if not math.isfinite(options.rate) or options.rate <= 0:
        raise LoadTestError(f"--rate must be a positive finite number of requests per second, got {options.rate}")
    if options.duration < 5:
        raise LoadTestError(f"--duration must be at least 5 s, got {options.duration}")
    if options.users < 1:
        raise LoadTestError(f"--users must be at least 1, got {options.users}")
    if options.model not in MODELS:
        raise LoadTestError(f"unknown model {options.model!r}: expected closed or open")
    if not math.isfinite(options.bet_interval) or options.bet_interval <= 0:
        raise LoadTestError(f"--bet-interval must be a positive finite number of seconds, got {options.bet_interval}")
    if options.bet_interval > options.duration:
        raise LoadTestError(
            f"--bet-interval {options.bet_interval:g} is longer than --duration {options.duration}, so no second bet "
            "would be placed; pass a shorter interval or a longer duration"
        )


def run_loadtest(options: LoadTestOptions) -> list[dict[str, Any]]:
    """Run one strategy, or each with `all`; return the results written to loadtest.json."""
    check_options(options)
    options.out.mkdir(parents=True, exist_ok=True)
    if options.strategy != "all":
        return [_run_one(options, options.out)]

    results = [_run_one(options, options.out / name, strategy=name) for name in STRATEGIES]
    (options.out / "loadtest.json").write_text(json.dumps({"comparison": results}, indent=2) + "\n")
    (options.out / "loadtest.html").write_text(report.comparison_html(results))
    return results


def _run_one(options: LoadTestOptions, out: Path, *, strategy: str | None = None) -> dict[str, Any]:
    strategy = strategy or options.strategy
    out.mkdir(parents=True, exist_ok=True)
    logger.info("load test of strategy %s at %s requests/s for %s s", strategy, options.rate, options.duration)
    up = UpOptions(
        run_dir=out / "run", redis_url=options.redis_url, db_url=options.db_url, strategy=strategy, odds_ttl_seconds=options.odds_ttl_seconds
    )
    platform = start_platform(up)
    try:
        result, series = _measure(platform, options, out, strategy)
    finally:
        platform.stop()
    (out / "loadtest.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "loadtest.html").write_text(report.run_html(result, series))
    return result


def _measure(platform: Platform, options: LoadTestOptions, out: Path, strategy: str) -> tuple[dict[str, Any], dict[str, Any]]:
    api = platform.api_urls[0]
    fixture = set_up(api, platform.config.admin_token, markets=options.markets, bettors=options.bettors)
    try:
        fund_bettors(platform.config, api, fixture.bettors)
    except BetSetupError as err:
        raise LoadTestError(str(err)) from err
    tokens_file = out / "tokens.json"
    tokens_file.write_text(json.dumps(fixture.tokens))

    traffic = BackgroundTraffic(
        api, platform.config.admin_token, fixture, odds_interval=options.odds_change_interval, quote_interval=options.quote_interval
    )
    bets = BetTraffic(platform.config, api, fixture, interval=options.bet_interval)
    sampler = StatsSampler(api)
    before = fetch_stats(api)
    traffic.start()
    bets.start()
    sampler.start()
    try:
        _run_locust(api, options, out, fixture.market_ids, tokens_file)
    finally:
        sampler.stop()
        traffic.stop()
        bets.stop()
    after = fetch_stats(api)

    locust = _read_locust_stats(out / "locust_final.json")
    result = _result(strategy, options, before, after, locust)
    result["background"] = {"odds_changes": traffic.odds_changes, "quotes": traffic.quotes, "errors": traffic.errors, **bets.summary()}
    series = {"locust": _read_locust_history(out / "locust_stats_history.csv"), "server": sampler.samples}
    return result, series


def locust_argv(api: str, options: LoadTestOptions, out: Path) -> list[str]:
    """Return the command line of a headless Locust run against `api`."""
    workers = ["--processes", str(options.workers)] if options.workers > 0 else []
    return [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *workers, "--headless", "--host", api,
        "--users", str(options.users), "--spawn-rate", str(options.users), "--run-time", f"{options.duration}s",
        "--csv", str(out / "locust"), "--csv-full-history", "--json-file", str(out / "locust_final"),
        "--only-summary", "--stop-timeout", "5",
        MODELS[options.model],
    ]  # fmt: skip


def _run_locust(api: str, options: LoadTestOptions, out: Path, market_ids: list[int], tokens_file: Path) -> None:
    argv = locust_argv(api, options, out)
    env = {
        **os.environ,
        "WAGERLAB_TOKENS_FILE": str(tokens_file),
        "WAGERLAB_MARKETS": ",".join(map(str, market_ids)),
        "WAGERLAB_RATE": str(options.rate),
        "WAGERLAB_USERS": str(options.users),
    }
    with open(out / "locust.log", "wb") as log:
        completed = subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=options.duration + 120)
    # Locust exits 1 when any request failed; the failures are in the stats, so only other
    # codes mean that Locust itself did not run.
    if completed.returncode not in (0, 1):
        raise LoadTestError(f"locust exited with code {completed.returncode}; see {out / 'locust.log'}")


def _read_locust_stats(path: Path) -> dict[str, float]:
    """Return requests, failures, p50 and p99 of the odds row of Locust's final JSON stats.

    The final JSON, unlike the CSV that Locust writes every few seconds, counts the
    requests of the last seconds too, so it can be compared with the server's count.
    """
    for entry in json.loads(path.read_text()):
        if entry["name"] == LOCUST_ROW_NAME:
            times = {int(float(ms)): count for ms, count in entry["response_times"].items()}
            return {
                "requests": float(entry["num_requests"]),
                "failures": float(entry["num_failures"]),
                "p50_ms": percentile(times, 0.50),
                "p99_ms": percentile(times, 0.99),
            }
    raise LoadTestError(f"{path} has no entry for {LOCUST_ROW_NAME}: Locust sent no odds request; see locust.log beside it")


def percentile(times: dict[int, int], fraction: float) -> float:
    """Return the smallest response time (ms) at or below which `fraction` of requests finished."""
    total = sum(times.values())
    if total == 0:
        return 0.0
    seen = 0
    for milliseconds in sorted(times):
        seen += times[milliseconds]
        if seen >= fraction * total:
            return float(milliseconds)
    return float(max(times))


def _read_locust_history(path: Path) -> list[dict[str, float]]:
    rows: list[dict[str, float]] = []
    with open(path, newline="") as history:
        for row in csv.DictReader(history):
            if row["Name"] != LOCUST_ROW_NAME or row["50%"] in ("N/A", ""):
                continue
            rows.append({key: float(row[column]) for key, column in (("time", "Timestamp"), ("rps", "Requests/s"), ("p50", "50%"), ("p99", "99%"))})
    return rows


def _result(strategy: str, options: LoadTestOptions, before: dict[str, Any], after: dict[str, Any], locust: dict[str, float]) -> dict[str, Any]:
    def delta(key: str) -> int:
        return int(after[key]) - int(before[key])

    server_requests = after["requests"].get(ODDS_ROUTE, 0) - before["requests"].get(ODDS_ROUTE, 0)
    hits, misses = delta("hits"), delta("misses")
    return {
        "strategy": strategy,
        "model": options.model,
        "target_rate": options.rate,
        "duration_s": options.duration,
        "achieved_rate": round(server_requests / options.duration, 1),
        "locust_rate": round(locust["requests"] / options.duration, 1),
        "server_requests": server_requests,
        "locust_requests": int(locust["requests"]),
        "locust_failures": int(locust["failures"]),
        "count_difference_pct": round(100 * abs(server_requests - locust["requests"]) / max(1, locust["requests"]), 2),
        "p50_ms": locust["p50_ms"],
        "p99_ms": locust["p99_ms"],
        "hit_ratio": round(hits / (hits + misses), 4) if hits + misses else None,
        "db_queries": delta("db_reads"),
        "db_queries_per_minute": round(delta("db_reads") * 60 / options.duration, 1),
        "max_staleness_ms": after["max_staleness_ms"],
        "stale_reads": delta("stale_reads"),
        "max_age_ms": after["max_age_ms"],
        "options": {key: str(value) if isinstance(value, Path) else value for key, value in asdict(options).items()},
    }
