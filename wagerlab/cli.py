"""The `wagerlab` command line: run scenarios (run, fuzz), start the platform (up, loadtest),
serve its parts (chain, serve), and inspect or repair a running one (forensics, reconcile).
`compile` builds the contracts.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from wagerlab.platform.config import PlatformConfig

logger = logging.getLogger("wagerlab.cli")

EXIT_OK = 0
EXIT_INVARIANT_FAILED = 1
EXIT_INVALID_SCENARIO = 2
EXIT_INTERRUPTED = 130
"""128 + SIGINT, as shells report a program stopped by Ctrl-C."""
MAX_SEED = 2**63 - 1

LOG_LEVELS = ["debug", "info", "warning", "error"]
LOG_FORMAT_ENV = "WAGERLAB_LOG_FORMAT"
"""Environment variable with the log format, so that the processes a run starts inherit it."""


def _configure_logging(level: str, console_level: str | None = None) -> None:
    from wagerlab.logs import configure_logging

    configure_logging(level, os.environ.get(LOG_FORMAT_ENV, "text"), console_level=console_level)


def _configure_verbose_logging(args: argparse.Namespace) -> None:
    """Record INFO logs, but print them on stderr only with `--verbose` (WARNING and above otherwise)."""
    _configure_logging("info", console_level="info" if args.verbose else "warning")


def _add_verbose_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="also print INFO logs on stderr")


def _cmd_run(args: argparse.Namespace) -> int:
    from wagerlab.sim.report import print_summary
    from wagerlab.sim.scenario import ScenarioError, load_scenario

    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as err:
        print(f"wagerlab: invalid scenario: {err}", file=sys.stderr)
        return EXIT_INVALID_SCENARIO

    from wagerlab.sim.backends import BackendError, Backends
    from wagerlab.sim.rundir import RunDirError
    from wagerlab.sim.runner import RunInterrupted, run_scenario

    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        print(f"wagerlab: invalid --seed {args.seed}: expected an integer from 0 to {MAX_SEED}", file=sys.stderr)
        return EXIT_INVALID_SCENARIO
    if args.strategy is not None:
        platform = dataclasses.replace(scenario.platform, cache_strategy=args.strategy)
        scenario = dataclasses.replace(scenario, platform=platform)
    seed = scenario.seed if args.seed is None else args.seed
    run_dir = args.out or Path("runs") / f"{scenario.name}-seed{seed}"
    _configure_verbose_logging(args)
    backends = Backends(db_url=args.db, redis_url=args.redis)
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    try:
        result = run_scenario(
            scenario, seed=seed, run_dir=run_dir, show_progress=not args.no_progress, backends=backends, rpc_url=args.rpc
        )
    except (BackendError, RunDirError) as err:
        print(f"wagerlab: {err}", file=sys.stderr)
        return EXIT_INVALID_SCENARIO
    except RunInterrupted as err:
        print(f"wagerlab: {err}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("wagerlab: interrupted while starting; every process of the run was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    print_summary(result.report, result.report_path, Console())
    return result.exit_code


def _interrupt_on_sigterm(_signum: int, _frame: object) -> None:
    """Turn SIGTERM into KeyboardInterrupt, so a terminated run stops its processes as Ctrl-C does."""
    raise KeyboardInterrupt


def _cmd_fuzz(args: argparse.Namespace) -> int:
    from wagerlab.sim.fuzz import (
        FuzzError,
        SeedOutcome,
        describe_fault_counts,
        fuzz,
        parse_faults,
        parse_seeds,
    )

    try:
        seeds = parse_seeds(args.seeds)
        faults = parse_faults(args.faults)
        _check_budget(args.budget)
    except FuzzError as err:
        print(f"wagerlab: {err}", file=sys.stderr)
        return EXIT_INVALID_SCENARIO
    _configure_verbose_logging(args)

    def show(outcome: SeedOutcome) -> None:
        faults_text = describe_fault_counts(outcome.faults)
        if outcome.ok:
            print(f"seed {outcome.seed}: ok in {outcome.duration_seconds:.1f} s ({faults_text}), trace digest {outcome.trace_digest}")
            return
        print(f"seed {outcome.seed}: FAILED ({', '.join(outcome.failed)}; {faults_text}); report {outcome.report}")
        print(f"  replay: {outcome.replay}")
        if outcome.shrunk_scenario:
            print(f"  smallest failing scenario: {outcome.shrunk_scenario}")

    out_dir = args.out or Path("runs") / "fuzz"
    print(f"fuzzing seeds {seeds.start}..{seeds.stop - 1} with faults {faults or 'none'}; output in {out_dir}")
    summary = fuzz(seeds, faults, out_dir, budget_seconds=args.budget, shrink=not args.no_shrink, on_outcome=show)
    if summary.skipped:
        print(f"budget spent: seeds {summary.skipped[0]}..{summary.skipped[-1]} not run")
    failed = [outcome.seed for outcome in summary.seeds if not outcome.ok]
    counts = summary.fault_counts().values()
    injected, exercised = sum(entry["injected"] for entry in counts), sum(entry["exercised"] for entry in counts)
    print(
        f"{len(summary.seeds) - len(failed)} passed, {len(failed)} failed" + (f": seeds {failed}" if failed else "")
        + f"; {injected} faults injected, {exercised} exercised"
    )
    return EXIT_OK if summary.ok else EXIT_INVARIANT_FAILED


def _check_budget(budget: float | None) -> None:
    from wagerlab.sim.fuzz import FuzzError

    if budget is not None and (not math.isfinite(budget) or budget <= 0):
        raise FuzzError(f"--budget must be a positive finite number of seconds, got {budget}; leave it out to run every seed")


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # uvicorn binds with SO_REUSEADDR, so a port in TIME_WAIT counts as free here too.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _cmd_chain(args: argparse.Namespace) -> int:
    from wagerlab.chain.errors import InvalidParams, StateFileError
    from wagerlab.chain.faults import parse_fault_settings
    from wagerlab.chain.server import run_node

    _configure_logging(args.log_level)
    if args.port != 0 and not _port_free(args.host, args.port):
        print(f"wagerlab: {args.host}:{args.port} is already in use; stop what listens there or pass another --port", file=sys.stderr)
        return EXIT_INVALID_SCENARIO
    try:
        faults = parse_fault_settings(
            {
                "delay_ms": args.fault_delay_ms,
                "delay_share": args.fault_delay_share,
                "fail_share": args.fault_fail_share,
                "seed": args.fault_seed,
            }
        )
        run_node(
            args.host,
            args.port,
            accounts=args.accounts,
            log_level=args.log_level,
            ready_file=args.ready_file,
            state_file=args.state,
            faults=faults,
        )
    except (InvalidParams, StateFileError) as err:
        print(f"wagerlab: {err}", file=sys.stderr)
        return EXIT_INVALID_SCENARIO
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    _configure_logging(args.log_level)
    if args.no_contract_monitor and args.service != "gateway":
        print(f"wagerlab: --no-contract-monitor applies to the gateway only, not to {args.service}: drop the option", file=sys.stderr)
        return EXIT_INVALID_SCENARIO
    config = _load_config(args)
    if config is None:
        return EXIT_INVALID_SCENARIO
    if args.service == "api":
        from wagerlab.platform.app import run_api

        run_api(config)
    elif args.service == "stream":
        from wagerlab.platform.stream import run_stream

        run_stream(config)
    elif args.service == "chainapi":
        from wagerlab.platform.app import run_chainapi

        run_chainapi(config)
    elif args.service == "gateway":
        from wagerlab.platform.gateway import run_gateway

        run_gateway(config, contract_monitor=not args.no_contract_monitor)
    else:
        from wagerlab.platform.monitors import run_monitors

        run_monitors(config)
    return EXIT_OK


def _cmd_reconcile(args: argparse.Namespace) -> int:
    import json

    from web3 import HTTPProvider, Web3

    from wagerlab.platform.db import make_engine
    from wagerlab.platform.reconcile import ReconcileError, reconcile

    _configure_logging(args.log_level)
    config = _load_config(args)
    if config is None:
        return EXIT_INVALID_SCENARIO
    w3 = Web3(HTTPProvider(config.rpc_url, request_kwargs={"timeout": 60}))
    try:
        report = reconcile(make_engine(config.db_url), w3, config, timeout=args.timeout)
    except ReconcileError as err:
        print(f"wagerlab: {err}", file=sys.stderr)
        return 1
    print(json.dumps(report.as_dict(), indent=2))
    return EXIT_OK


def _load_config(args: argparse.Namespace) -> PlatformConfig | None:
    """Load the `--config` file with the `--db` and `--redis` URLs applied.

    Prints the error and returns None when the file is missing, unreadable or incomplete.
    """
    from wagerlab.platform.config import ConfigError, PlatformConfig

    try:
        return _with_backends(PlatformConfig.load(args.config), args)
    except ConfigError as err:
        print(f"wagerlab: {err}", file=sys.stderr)
        return None


def _with_backends(config: PlatformConfig, args: argparse.Namespace) -> PlatformConfig:
    """Return the config with the database and Redis URLs given on the command line, if any."""
    return dataclasses.replace(config, db_url=args.db or config.db_url, redis_url=args.redis or config.redis_url)


def _add_config_options(parser: argparse.ArgumentParser, *, log_level: str) -> None:
    """Add `--config`, `--log-level` (default `log_level`), `--db` and `--redis` for a command that reads a platform config."""
    parser.add_argument("--config", type=Path, required=True, help="platform config JSON written by `wagerlab run`")
    parser.add_argument("--log-level", default=log_level, choices=LOG_LEVELS)
    _add_backend_options(parser)


def _add_backend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="URL",
        help="SQLAlchemy database URL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/wagerlab "
        "(default: SQLite; `run` puts it in the run directory). `run` creates a missing PostgreSQL "
        "database and empties the platform tables of an existing one",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="Redis URL for the api's cache, e.g. redis://127.0.0.1:6379/5 (default: embedded fakeredis). "
        "`run` deletes the cache's odds:* and token:* keys in that database first",
    )


def _cmd_forensics(args: argparse.Namespace) -> int:
    import json

    from wagerlab.platform.gateway.forensics import (
        ForensicLog,
        ForensicLogError,
        ForensicQuery,
        verify_chain,
    )

    try:
        count = verify_chain(args.log)
        query = ForensicQuery(ip=args.ip, account=args.account, since=args.since, until=args.until)
        entries = ForensicLog(args.log).query(query)
    except ForensicLogError as err:
        print(f"wagerlab: {err}", file=sys.stderr)
        return 1
    for entry in entries:
        print(json.dumps(entry, sort_keys=True))
    print(f"{len(entries)} of {count} entries match; hash chain intact", file=sys.stderr)
    return EXIT_OK


def _time_argument(text: str) -> float:
    """Parse Unix seconds or an ISO 8601 time (UTC unless it names an offset)."""
    from datetime import UTC, datetime

    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"invalid time {text!r}: give Unix seconds or ISO 8601 such as 2026-12-04T21:30:00") from err
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _cmd_up(args: argparse.Namespace) -> int:
    from wagerlab.chain.compiler import CompilerError
    from wagerlab.chain.deploy import DeploymentError
    from wagerlab.chain.external import ExternalNodeError
    from wagerlab.sim.rundir import RunDirError
    from wagerlab.sim.stack import StackError
    from wagerlab.sim.up import (
        UpError,
        UpOptions,
        run_until_stopped,
        start_platform,
        stop_on_signals,
    )

    _configure_verbose_logging(args)
    options = UpOptions(
        run_dir=args.out,
        nodes=args.nodes,
        db_url=args.db,
        redis_url=args.redis,
        strategy=args.strategy,
        odds_ttl_seconds=args.ttl,
        rpc_url=args.rpc,
    )
    try:
        platform = start_platform(options)
    except (UpError, RunDirError, StackError, ExternalNodeError, DeploymentError, CompilerError) as err:
        print(f"wagerlab: {err}", file=sys.stderr)
        return EXIT_INVALID_SCENARIO
    except KeyboardInterrupt:
        # start_platform has stopped every process it started before the interrupt reached here.
        print("wagerlab: interrupted while starting; every process up started was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    stops = "every service" if args.rpc else "the chain node and every service"
    kept = f"; the node at {args.rpc} keeps running" if args.rpc else ""
    try:
        for name, url in platform.urls().items():
            print(f"{name:9} {' '.join(url) if isinstance(url, list) else url}")
        print(f"admin token in {args.out / 'platform.json'}; logs in {args.out / 'logs'}; Ctrl-C stops {stops}{kept}", flush=True)
        run_until_stopped(platform, should_stop=stop_on_signals())
    except StackError as err:
        print(f"wagerlab: {err}", file=sys.stderr)
        return 1
    finally:
        platform.stop()
    return EXIT_OK


def _add_rpc_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rpc",
        metavar="URL",
        help="use the node at this HTTP URL (anvil, Hardhat, wagerlab chain) instead of starting one; "
        "WebSocket is the same host and port; dev accounts 1..7 are funded with anvil_setBalance",
    )


def _add_strategy_options(parser: argparse.ArgumentParser, *, allow_all: bool = False) -> None:
    from wagerlab.platform.cache.strategies import STRATEGIES

    names = [*STRATEGIES, "all"] if allow_all else list(STRATEGIES)
    parser.add_argument("--strategy", default="ttl-broadcast", choices=names, help="how the api caches odds (default: ttl-broadcast)")
    parser.add_argument("--ttl", type=int, default=30, help="odds cache TTL in seconds (default: 30)")


def _cmd_loadtest(args: argparse.Namespace) -> int:
    from wagerlab.sim.loadtest import LoadTestError, LoadTestOptions, check_options, run_loadtest
    from wagerlab.sim.rundir import RunDirError
    from wagerlab.sim.stack import StackError
    from wagerlab.sim.up import UpError

    _configure_verbose_logging(args)
    options = LoadTestOptions(
        strategy=args.strategy,
        rate=args.rate,
        duration=args.duration,
        out=args.out,
        users=args.users,
        workers=args.workers,
        model=args.model,
        bet_interval=args.bet_interval,
        odds_ttl_seconds=args.ttl,
        redis_url=args.redis,
        db_url=args.db,
    )
    try:
        check_options(options)
    except LoadTestError as err:
        print(f"wagerlab: {err}", file=sys.stderr)
        return EXIT_INVALID_SCENARIO
    try:
        results = run_loadtest(options)
    except RunDirError as err:
        print(f"wagerlab: {err}", file=sys.stderr)
        return EXIT_INVALID_SCENARIO
    except (LoadTestError, UpError, StackError) as err:
        print(f"wagerlab: {err}", file=sys.stderr)
        return 1
    print(
        f"{'strategy':14} {'target/s':>9} {'server/s':>9} {'locust/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'hits':>6} {'DB q':>6} {'stale ms':>9} "
        f"{'bets mined':>10} {'failed':>6} {'not in DB':>9}"
    )
    for row in results:
        hit_ratio = "-" if row["hit_ratio"] is None else f"{row['hit_ratio']:.3f}"
        background = row["background"]
        print(
            f"{row['strategy']:14} {row['target_rate']:>9.0f} {row['achieved_rate']:>9.1f} {row['locust_rate']:>9.1f} "
            f"{row['p50_ms']:>7.0f} {row['p99_ms']:>7.0f} {hit_ratio:>6} {row['db_queries']:>6} {row['max_staleness_ms']:>9} "
            f"{background['bets_mined']:>10} {background['bets_failed']:>6} {background['bets_missing_in_db']:>9}"
        )
    print(f"results in {args.out / 'loadtest.json'} and {args.out / 'loadtest.html'}")
    return EXIT_OK


def _cmd_compile(args: argparse.Namespace) -> int:
    from wagerlab.chain.compiler import CompilerError, compile_contracts

    _configure_logging("warning" if args.quiet else "info")
    try:
        path = compile_contracts(force=args.force)
    except CompilerError as err:
        print(f"wagerlab: {err}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"contracts compiled to {path}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wagerlab", description=__doc__)
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        help=f"format of log lines on stderr and in a run's service logs: text, or one JSON object per line "
        f"(default: ${LOG_FORMAT_ENV} or text)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a scenario on the full stack and check every invariant")
    run.add_argument("scenario", type=Path, help="scenario file (TOML), e.g. scenarios/fight_night.toml")
    run.add_argument("--seed", type=int, help="seed for every actor's decisions (default: the file's scenario.seed)")
    run.add_argument("--out", type=Path, help="directory for report.json, trace.json, logs and the database (default: runs/NAME-seedN)")
    run.add_argument("--no-progress", action="store_true", help="do not draw live progress bars")
    _add_verbose_option(run)
    _add_rpc_option(run)
    _add_backend_options(run)
    run.add_argument(
        "--strategy",
        choices=["none", "ttl", "ttl-broadcast", "xfetch", "coalesce", "two-tier"],
        help="how the api caches odds (default: ttl-broadcast)",
    )
    run.set_defaults(handler=_cmd_run)

    fuzz = commands.add_parser("fuzz", help="run seeded random scenarios with faults and check every invariant")
    fuzz.add_argument("--seeds", required=True, help="seed range A..B (inclusive) or one seed, e.g. 1..20")
    fuzz.add_argument(
        "--faults",
        help="comma-separated fault kinds to draw from, or none to run without faults (default: every fault the platform must survive)",
    )
    fuzz.add_argument("--budget", type=float, help="stop starting new seeds after this many seconds (a positive number)")
    fuzz.add_argument("--out", type=Path, help="directory for seed-N/ folders and summary.json (default: runs/fuzz)")
    fuzz.add_argument("--no-shrink", action="store_true", help="do not search for a smaller failing scenario")
    _add_verbose_option(fuzz)
    fuzz.set_defaults(handler=_cmd_fuzz)

    chain = commands.add_parser("chain", help="serve a py-evm development node over JSON-RPC (HTTP and WebSocket)")
    chain.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    chain.add_argument("--port", type=int, default=8545, help="TCP port (default: 8545)")
    chain.add_argument("--accounts", type=int, default=10, help="number of funded dev accounts (default: 10)")
    chain.add_argument("--ready-file", type=Path, help="write the node's URLs as JSON to this file once it listens")
    chain.add_argument("--log-level", default="info", choices=LOG_LEVELS)
    chain.add_argument("--state", type=Path, metavar="FILE", help="load the chain from FILE at start if it exists, save it there on stop")
    chain.add_argument("--fault-delay-ms", type=int, default=0, help="delay of a delayed response, in milliseconds (default: 0)")
    chain.add_argument("--fault-delay-share", type=float, default=0.0, help="share of responses to delay, 0 to 1 (default: 0)")
    chain.add_argument("--fault-fail-share", type=float, default=0.0, help="share of responses to fail with JSON-RPC error -32603, 0 to 1 (default: 0)")
    chain.add_argument("--fault-seed", type=int, default=0, help="seed of the fault draws (default: 0)")
    chain.set_defaults(handler=_cmd_chain)

    serve = commands.add_parser("serve", help="run one platform service")
    serve.add_argument("service", choices=["api", "chainapi", "monitors", "stream", "gateway"])
    serve.add_argument(
        "--no-contract-monitor",
        action="store_true",
        help="gateway only: run without the contract monitor, as every gateway but one does when several share a chain and a database",
    )
    _add_config_options(serve, log_level="info")
    serve.set_defaults(handler=_cmd_serve)

    forensics = commands.add_parser("forensics", help="verify the gateway's forensic log and print the matching entries as JSON lines")
    forensics.add_argument("--log", type=Path, required=True, help="forensic log file, e.g. runs/NAME/forensics.jsonl")
    forensics.add_argument("--ip", help="only requests from this client IP")
    forensics.add_argument("--account", help="only requests acting for this username ('admin' for the admin token)")
    forensics.add_argument("--since", type=_time_argument, help="only requests at or after this time (Unix seconds or ISO 8601)")
    forensics.add_argument("--until", type=_time_argument, help="only requests at or before this time (Unix seconds or ISO 8601)")
    forensics.set_defaults(handler=_cmd_forensics)

    reconcile = commands.add_parser("reconcile", help="compare the database with the chain once, correct each divergence and print the corrections as JSON")
    reconcile.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the monitors to finish one common block (default: 60)")
    _add_config_options(reconcile, log_level="warning")
    reconcile.set_defaults(handler=_cmd_reconcile)

    compile_ = commands.add_parser("compile", help="compile contracts/ with the pinned solc from npm")
    compile_.add_argument("--force", action="store_true", help="compile even when the sources have not changed")
    compile_.add_argument("--quiet", action="store_true", help="print nothing on success")
    compile_.set_defaults(handler=_cmd_compile)

    up = commands.add_parser("up", help="run the node, N api processes and the other services until stopped")
    up.add_argument("--nodes", type=int, default=1, help="api processes sharing one database and one Redis (default: 1; more need --redis)")
    up.add_argument("--out", type=Path, default=Path("runs/up"), help="directory for configs, logs and the SQLite file (default: runs/up)")
    _add_verbose_option(up)
    _add_rpc_option(up)
    _add_strategy_options(up)
    _add_backend_options(up)
    up.set_defaults(handler=_cmd_up)

    loadtest = commands.add_parser("loadtest", help="start the platform and run Locust against its odds endpoint while bets and odds changes flow")
    loadtest.add_argument("--rate", type=float, default=833.0, help="target odds requests per second (default: 833, fight night)")
    loadtest.add_argument("--duration", type=int, default=60, help="seconds Locust runs per strategy (default: 60)")
    loadtest.add_argument("--out", type=Path, default=Path("runs/loadtest"), help="directory for loadtest.json and loadtest.html")
    loadtest.add_argument("--users", type=int, default=50, help="Locust users sharing the rate (default: 50)")
    loadtest.add_argument("--workers", type=int, default=0, help="local Locust worker processes (default: 0, one process)")
    loadtest.add_argument("--model", choices=["closed", "open"], default="closed", help="closed (paced users) or open (fixed arrival rate)")
    loadtest.add_argument(
        "--bet-interval",
        type=float,
        default=0.4,
        metavar="SECONDS",
        help="seconds between bets placed on chain through the api while Locust runs (default: 0.4, about 75 bets in 30 s)",
    )
    _add_verbose_option(loadtest)
    _add_strategy_options(loadtest, allow_all=True)
    _add_backend_options(loadtest)
    loadtest.set_defaults(handler=_cmd_loadtest)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.log_format is not None:
        os.environ[LOG_FORMAT_ENV] = args.log_format
    return args.handler(args)
