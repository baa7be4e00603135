"""`wagerlab up`: the chain node, N api processes on one database and one Redis, and the rest.

With `--rpc URL` the platform deploys on that node instead of starting one, and leaves it
running when it stops.

The platform runs until stopped: chainapi, the monitors and the odds stream once each, and
`nodes` api processes that share the database and the Redis cache. Several api processes
need a real Redis, because the embedded fakeredis lives inside one process and the nodes
would neither share tokens nor see each other's odds changes.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import time
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
from wagerlab.sim.stack import Stack, free_port

logger = logging.getLogger(__name__)

HOUSE_FUNDING = 1_000_000 * ONE_TOKEN
WATCH_INTERVAL_SECONDS = 1.0


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

    @property
    def api_urls(self) -> list[str]:
        return [config.api_url for config in self.node_configs]

    def urls(self) -> dict[str, str | list[str]]:
        return {
            "chain": self.config.rpc_url,
            "api": self.api_urls,
            "stream": self.config.stream_url,
            "chainapi": self.config.chainapi_url,
            "monitors": self.config.monitors_url,
        }

    def stop(self) -> None:
        self.stack.stop()


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
    """Start every process and return once each one listens; the caller must call `stop()`."""
    check_options(options)
    options.run_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(options.run_dir)
    try:
        config = _deploy(stack, options)
        platform = Platform(stack, config)
        _start_services(platform, options)
        return platform
    except BaseException:
        stack.stop()
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
    )


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

    for index in range(1, options.nodes + 1):
        node_config = config if index == 1 else dataclasses.replace(config, api_port=free_port())
        node_path = options.run_dir / f"api-{index}.json"
        node_config.dump(node_path)
        platform.node_configs.append(node_config)
        platform.stack.spawn(f"api-{index}", ["serve", "api", "--config", str(node_path)])
    for process, node_config in zip(platform.stack.processes[-options.nodes :], platform.node_configs, strict=True):
        process.wait_for_port(config.host, node_config.api_port)


def run_until_stopped(platform: Platform, *, should_stop: Callable[[], bool]) -> None:
    """Check every process each second until `should_stop()` is true or one of them dies."""
    while not should_stop():
        platform.stack.ensure_running()
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
