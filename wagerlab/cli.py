"""The `wagerlab` command line: run, chain, serve and compile."""

from __future__ import annotations

import argparse
import dataclasses
import logging
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

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _configure_logging(level: str, console_level: str | None = None) -> None:
    root = logging.getLogger()
    root.setLevel(level.upper())
    console = logging.StreamHandler(sys.stderr)
    console.setLevel((console_level or level).upper())
    console.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(console)
    # httpx logs every request at INFO; the services log their own requests.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _cmd_run(args: argparse.Namespace) -> int:
    from wagerlab.sim.report import print_summary
    from wagerlab.sim.scenario import ScenarioError, load_scenario

    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as err:
        print(f"wagerlab: invalid scenario: {err}", file=sys.stderr)
        return EXIT_INVALID_SCENARIO

    from wagerlab.sim.backends import BackendError, Backends
    from wagerlab.sim.runner import run_scenario

    seed = scenario.seed if args.seed is None else args.seed
    run_dir = args.out or Path("runs") / f"{scenario.name}-seed{seed}"
    _configure_logging("info", console_level="info" if args.verbose else "warning")
    backends = Backends(db_url=args.db, redis_url=args.redis)
    try:
        result = run_scenario(scenario, seed=seed, run_dir=run_dir, show_progress=not args.no_progress, backends=backends)
    except BackendError as err:
        print(f"wagerlab: {err}", file=sys.stderr)
        return EXIT_INVALID_SCENARIO
    print_summary(result.report, result.report_path, Console())
    return result.exit_code


def _cmd_fuzz(args: argparse.Namespace) -> int:
    from wagerlab.sim.fuzz import FuzzError, SeedOutcome, fuzz, parse_faults, parse_seeds

    try:
        seeds = parse_seeds(args.seeds)
        faults = parse_faults(args.faults)
    except FuzzError as err:
        print(f"wagerlab: {err}", file=sys.stderr)
        return EXIT_INVALID_SCENARIO
    _configure_logging("info", console_level="info" if args.verbose else "warning")

    def show(outcome: SeedOutcome) -> None:
        if outcome.ok:
            print(f"seed {outcome.seed}: ok in {outcome.duration_seconds:.1f} s, trace digest {outcome.trace_digest}")
            return
        print(f"seed {outcome.seed}: FAILED ({', '.join(outcome.failed)}); report {outcome.report}")
        print(f"  replay: {outcome.replay}")
        if outcome.shrunk_scenario:
            print(f"  smallest failing scenario: {outcome.shrunk_scenario}")

    out_dir = args.out or Path("runs") / "fuzz"
    print(f"fuzzing seeds {seeds.start}..{seeds.stop - 1} with faults {faults or 'none'}; output in {out_dir}")
    summary = fuzz(seeds, faults, out_dir, budget_seconds=args.budget, shrink=not args.no_shrink, on_outcome=show)
    if summary.skipped:
        print(f"budget spent: seeds {summary.skipped[0]}..{summary.skipped[-1]} not run")
    failed = [outcome.seed for outcome in summary.seeds if not outcome.ok]
    print(f"{len(summary.seeds) - len(failed)} passed, {len(failed)} failed" + (f": seeds {failed}" if failed else ""))
    return EXIT_OK if summary.ok else EXIT_INVARIANT_FAILED


def _cmd_chain(args: argparse.Namespace) -> int:
    from wagerlab.chain.server import run_node

    _configure_logging(args.log_level)
    run_node(args.host, args.port, accounts=args.accounts, log_level=args.log_level, ready_file=args.ready_file)
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    from wagerlab.platform.config import ConfigError, PlatformConfig

    _configure_logging(args.log_level)
    try:
        config = _with_backends(PlatformConfig.load(args.config), args)
    except ConfigError as err:
        print(f"wagerlab: {err}", file=sys.stderr)
        return EXIT_INVALID_SCENARIO
    if args.service == "api":
        from wagerlab.platform.app import run_api

        run_api(config)
    elif args.service == "chainapi":
        from wagerlab.platform.app import run_chainapi

        run_chainapi(config)
    else:
        from wagerlab.platform.monitors import run_monitors

        run_monitors(config)
    return EXIT_OK


def _with_backends(config: PlatformConfig, args: argparse.Namespace) -> PlatformConfig:
    """Return the config with the database and Redis URLs given on the command line, if any."""
    return dataclasses.replace(config, db_url=args.db or config.db_url, redis_url=args.redis or config.redis_url)


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
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a scenario on the full stack and check every invariant")
    run.add_argument("scenario", type=Path, help="scenario file (TOML), e.g. scenarios/fight_night.toml")
    run.add_argument("--seed", type=int, help="seed for every actor's decisions (default: the file's scenario.seed)")
    run.add_argument("--out", type=Path, help="directory for report.json, trace.json, logs and the database (default: runs/NAME-seedN)")
    run.add_argument("--no-progress", action="store_true", help="do not draw live progress bars")
    run.add_argument("-v", "--verbose", action="store_true", help="also print INFO logs on stderr")
    _add_backend_options(run)
    run.set_defaults(handler=_cmd_run)

    fuzz = commands.add_parser("fuzz", help="run seeded random scenarios with faults and check every invariant")
    fuzz.add_argument("--seeds", required=True, help="seed range A..B (inclusive) or one seed, e.g. 1..20")
    fuzz.add_argument("--faults", help="comma-separated fault kinds to draw from (default: every fault the platform must survive)")
    fuzz.add_argument("--budget", type=float, help="stop starting new seeds after this many seconds")
    fuzz.add_argument("--out", type=Path, help="directory for seed-N/ folders and summary.json (default: runs/fuzz)")
    fuzz.add_argument("--no-shrink", action="store_true", help="do not search for a smaller failing scenario")
    fuzz.add_argument("-v", "--verbose", action="store_true", help="also print INFO logs on stderr")
    fuzz.set_defaults(handler=_cmd_fuzz)

    chain = commands.add_parser("chain", help="serve a py-evm development node over JSON-RPC (HTTP and WebSocket)")
    chain.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    chain.add_argument("--port", type=int, default=8545, help="TCP port (default: 8545)")
    chain.add_argument("--accounts", type=int, default=10, help="number of funded dev accounts (default: 10)")
    chain.add_argument("--ready-file", type=Path, help="write the node's URLs as JSON to this file once it listens")
    chain.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    chain.set_defaults(handler=_cmd_chain)

    serve = commands.add_parser("serve", help="run one platform service")
    serve.add_argument("service", choices=["api", "chainapi", "monitors"])
    serve.add_argument("--config", type=Path, required=True, help="platform config JSON written by `wagerlab run`")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    _add_backend_options(serve)
    serve.set_defaults(handler=_cmd_serve)

    compile_ = commands.add_parser("compile", help="compile contracts/ with the pinned solc from npm")
    compile_.add_argument("--force", action="store_true", help="compile even when the sources have not changed")
    compile_.add_argument("--quiet", action="store_true", help="print nothing on success")
    compile_.set_defaults(handler=_cmd_compile)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)
