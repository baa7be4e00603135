"""`wagerlab up`: the chain node, N api processes and their gateways on one database and one Redis, and the rest.

With `--rpc URL` the platform deploys on that node instead of starting one, and leaves it
running when it stops.

The platform runs until stopped: chainapi, the monitors and the odds stream once each, and
`nodes` api processes that share the database and the Redis cache, each behind a gateway
process of its own (gateway-i forwards to api-i). Several api processes need a real Redis,
because the embedded fakeredis lives inside one process and the nodes would neither share
tokens nor see each other's odds changes.

Each service is its own process, so one can die without the others: while chainapi is
down the api still serves odds, and the gateways queue bets and claims in the database
until it is back. `run_until_stopped` starts again any service that exited, but not the
chain node, because a new node would start an empty chain without the platform's contracts.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from wagerlab.chain.accounts import dev_roles
from wagerlab.chain.compiler import load_artifacts
from wagerlab.chain.deploy import deploy_platform
from wagerlab.odds import ONE_TOKEN
from wagerlab.platform.cache import STRATEGIES
from wagerlab.platform.config import PlatformConfig
from wagerlab.sim.backends import clear_cache, prepare_database, sqlite_url
from wagerlab.sim.chainsetup import open_chain, platform_config
from wagerlab.sim.rundir import RunDir, claim_run_dir
from wagerlab.sim.stack import ManagedProcess, Stack, StackError, free_port

logger = logging.getLogger(__name__)

HOUSE_FUNDING = 1_000_000 * ONE_TOKEN
WATCH_INTERVAL_SECONDS = 1.0
NODE_PROCESS = "node"
"""The chain node's process name in the stack; the supervisor never restarts it."""
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60.0
"""A service that exits more than MAX_RESTARTS times within this window stops the platform."""


class UpError(Exception):
    """`wagerlab up` options that cannot work together, e.g. several nodes without Redis."""


@dataclass(frozen=True)
class UpOptions:
    run_dir: Path
    nodes: int = 1
    db_url: str | None = None
    """None selects a SQLite file in run_dir."""
    redis_url: str | None = None
    """None selects the embedded fakeredis, which only works with one node."""
    strategy: str = "ttl-broadcast"
    odds_ttl_seconds: int = 30
    rpc_url: str | None = None
    """HTTP URL of a node to deploy on (anvil, Hardhat, `wagerlab chain`); None starts one."""


@dataclass
class Platform:
    """A running platform: its processes, the config each api node reads, and its URLs."""

    stack: Stack
    config: PlatformConfig
    node_configs: list[PlatformConfig] = field(default_factory=list)
    """The config of api-i and gateway-i, in node order; the first one is `config`."""
    run_lock: RunDir | None = None
    """The lock on the run directory, so that a second `up` there refuses instead of deleting this one's database."""

    @property
    def api_urls(self) -> list[str]:
        return [config.api_url for config in self.node_configs]

    @property
    def gateway_urls(self) -> list[str]:
        return [config.gateway_url for config in self.node_configs]

    def urls(self) -> dict[str, str | list[str]]:
        """Return the URL of every service, the gateways first because clients should use them."""
        return {
            "gateway": self.gateway_urls,
            "chain": self.config.rpc_url,
            "api": self.api_urls,
            "stream": self.config.stream_url,
            "chainapi": self.config.chainapi_url,
            "monitors": self.config.monitors_url,
        }

    def stop(self) -> None:
        self.stack.stop()
        if self.run_lock is not None:
            self.run_lock.release()
            self.run_lock = None


def check_options(options: UpOptions) -> None:
    """Raise UpError naming the fix when the options cannot start a platform."""
    if options.nodes < 1:
        raise UpError(f"--nodes must be at least 1, got {options.nodes}")
    if options.nodes > 1 and options.redis_url is None:
        raise UpError(
            f"--nodes {options.nodes} needs a shared Redis: pass --redis redis://127.0.0.1:6379/N with a database number "
            "of your own (the embedded fakeredis lives inside one api process)"
        )
    if options.strategy not in STRATEGIES:
        raise UpError(f"unknown cache strategy {options.strategy!r}: expected one of {', '.join(STRATEGIES)}")
    if options.odds_ttl_seconds < 1:
        raise UpError(f"the odds TTL must be at least 1 s, got {options.odds_ttl_seconds}")


def start_platform(options: UpOptions) -> Platform:
    """Start every process and return once each one listens; the caller must call `stop()`.

    Locks the run directory as `wagerlab run` does: raises RunDirError when another run or
    `up` holds it, or when it holds files no run wrote.
    """
    check_options(options)
    run_lock = claim_run_dir(options.run_dir)
    stack = Stack(options.run_dir)
    try:
        config = _deploy(stack, options)
        platform = Platform(stack, config, run_lock=run_lock)
        _start_services(platform, options)
        return platform
    except BaseException:
        stack.stop()
        run_lock.release()
        raise


def _deploy(stack: Stack, options: UpOptions) -> PlatformConfig:
    load_artifacts()
    chain = open_chain(stack, options.rpc_url)
    deployment = deploy_platform(chain.w3, dev_roles(), house_funding=HOUSE_FUNDING)
    logger.info("contracts deployed on %s: sportsbook %s", chain.http_url, deployment.sportsbook)
    return platform_config(
        chain,
        deployment,
        db_url=options.db_url or sqlite_url(options.run_dir),
        redis_url=options.redis_url,
        cache_strategy=options.strategy,
        odds_ttl_seconds=options.odds_ttl_seconds,
        gateway_port=free_port(),
        forensic_log_path=_forensic_log(options.run_dir, 1),
    )


def _forensic_log(run_dir: Path, index: int) -> str:
    """Return gateway-i's forensic log path: each gateway keeps its own hash chain, so they cannot share a file."""
    name = "forensics.jsonl" if index == 1 else f"forensics-{index}.jsonl"
    return str((run_dir / name).resolve())


def _start_services(platform: Platform, options: UpOptions) -> None:
    config = platform.config
    (options.run_dir / "platform.db").unlink(missing_ok=True)
    prepare_database(config.db_url)
    if config.redis_url is not None:
        clear_cache(config.redis_url)

    config_path = options.run_dir / "platform.json"
    config.dump(config_path)
    services = {"chainapi": config.chainapi_port, "monitors": config.monitors_port, "stream": config.stream_port}
    platform.stack.start_services(config_path, services)

    node_paths: list[Path] = []
    for index in range(1, options.nodes + 1):
        node_config = config if index == 1 else _node_config(config, options.run_dir, index)
        node_path = options.run_dir / f"api-{index}.json"
        node_config.dump(node_path)
        node_paths.append(node_path)
        platform.node_configs.append(node_config)
        platform.stack.spawn(f"api-{index}", ["serve", "api", "--config", str(node_path)])
    for process, node_config in zip(platform.stack.processes[-options.nodes :], platform.node_configs, strict=True):
        process.wait_for_port(config.host, node_config.api_port)

    # A gateway reads the same file as its api node, so it forwards to that node's api_port.
    # Only gateway-1 runs the contract monitor, because every gateway that ran one would raise each alert again.
    for index, node_path in enumerate(node_paths, start=1):
        monitor_option = [] if index == 1 else ["--no-contract-monitor"]
        platform.stack.spawn(f"gateway-{index}", ["serve", "gateway", "--config", str(node_path), *monitor_option])
    for process, node_config in zip(platform.stack.processes[-options.nodes :], platform.node_configs, strict=True):
        process.wait_for_port(config.host, node_config.gateway_port)


def _node_config(config: PlatformConfig, run_dir: Path, index: int) -> PlatformConfig:
    return dataclasses.replace(
        config, api_port=free_port(), gateway_port=free_port(), forensic_log_path=_forensic_log(run_dir, index)
    )


class Supervisor:
    """Starts the services of a platform again when they exit, as a process supervisor does.

    The chain node is not restarted: a dead node raises StackError, because a new one would
    start an empty chain. Neither is a service that exits more than MAX_RESTARTS times
    within RESTART_WINDOW_SECONDS, since it would only fail again (a port taken, a broken
    config); StackError then carries the last lines of its log.
    """

    def __init__(self, stack: Stack, clock: Callable[[], float] = time.monotonic) -> None:
        self.stack = stack
        self.clock = clock
        self.restarts: dict[str, deque[float]] = {}
        """Monotonic times of each service's recent restarts, by process name."""

    def check(self) -> list[str]:
        """Start every exited service again; return the names of those started."""
        started: list[str] = []
        for process in self.stack.processes:
            if process.name == NODE_PROCESS:
                process.ensure_running()
                continue
            self._check_restart_budget(process)
            exited = process.restart_if_exited()
            if exited is None:
                continue
            old_pid, code = exited
            self.restarts.setdefault(process.name, deque()).append(self.clock())
            logger.warning(
                "%s (pid %d) exited with code %d; started it again as pid %s; see %s",
                process.name,
                old_pid,
                code,
                process.pid,
                process.log_path,
            )
            started.append(process.name)
        return started

    def _check_restart_budget(self, process: ManagedProcess) -> None:
        recent = self.restarts.get(process.name)
        if recent is None:
            return
        while recent and self.clock() - recent[0] > RESTART_WINDOW_SECONDS:
            recent.popleft()
        if len(recent) < MAX_RESTARTS:
            return
        code = process.exit_code()
        if code is not None:
            raise StackError(
                f"{process.name} exited with code {code} after {len(recent)} restarts within "
                f"{RESTART_WINDOW_SECONDS:.0f} s, so up stops; last lines of {process.log_path}:\n{process.log_tail()}"
            )


def run_until_stopped(platform: Platform, *, should_stop: Callable[[], bool]) -> None:
    """Check every process each second and start exited services again, until `should_stop()` is true.

    Raises StackError when the chain node dies or a service keeps exiting (see `Supervisor`).
    """
    supervisor = Supervisor(platform.stack)
    while not should_stop():
        supervisor.check()
        time.sleep(WATCH_INTERVAL_SECONDS)


def stop_on_signals() -> Callable[[], bool]:
    """Turn SIGINT and SIGTERM into a flag; return the function that reads it."""
    stopped = False

    def handle(signum: int, frame: FrameType | None) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    return lambda: stopped
