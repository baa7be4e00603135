"""The pytest plugin for QA suites that test a wagerlab platform (entry point `wagerlab`).

Fixtures, all prefixed `wagerlab_`:

- `wagerlab_run_scenario(path_or_scenario, seed=None)` runs a whole scenario on its own
  stack and returns the `RunResult` (`.ok`, `.report`, `.report_path`).
- `wagerlab_assert_invariants(result_or_report)` fails the test naming every invariant
  that did not hold.
- `wagerlab_platform` starts one platform per session and keeps it running: its
  `config`, `check_invariants()`, `admin_headers` and `advance_time(seconds)`.
- `wagerlab_api` (httpx client on the api), `wagerlab_chain` (web3 on the node),
  `wagerlab_websocket` (the node's JSON-RPC WebSocket) and `wagerlab_advance_time`.

The stack runs on SQLite and fakeredis unless `--wagerlab-db URL` and `--wagerlab-redis URL`
(or env `WAGERLAB_DB_URL` and `WAGERLAB_REDIS_URL`) name servers. Heavy modules are
imported inside the fixtures, so loading the plugin costs a project that does not use it
almost nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import httpx
    from sqlalchemy.engine import Engine
    from web3 import Web3
    from websockets.sync.client import ClientConnection

    from wagerlab.platform.config import PlatformConfig
    from wagerlab.sim.backends import Backends
    from wagerlab.sim.invariants import InvariantResult
    from wagerlab.sim.runner import RunResult
    from wagerlab.sim.scenario import Scenario
    from wagerlab.sim.up import Platform

DB_URL_ENV = "WAGERLAB_DB_URL"
REDIS_URL_ENV = "WAGERLAB_REDIS_URL"
CATCH_UP_TIMEOUT_SECONDS = 60.0
HTTP_TIMEOUT_SECONDS = 60.0


class InvariantsFailed(AssertionError):
    """One or more platform invariants did not hold."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wagerlab", "wagerlab platform under test")
    group.addoption(
        "--wagerlab-db",
        metavar="URL",
        help=f"database URL for the platform, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/qa (default: env {DB_URL_ENV}, else SQLite)",
    )
    group.addoption(
        "--wagerlab-redis",
        metavar="URL",
        help=f"Redis URL for the api's cache, e.g. redis://127.0.0.1:6379/3 (default: env {REDIS_URL_ENV}, else fakeredis)",
    )


@pytest.fixture(scope="session")
def wagerlab_backends(pytestconfig: pytest.Config) -> Backends:
    """The database and Redis every wagerlab fixture uses; None fields select the embedded pair."""
    from wagerlab.sim.backends import Backends

    db_url = pytestconfig.getoption("wagerlab_db") or os.environ.get(DB_URL_ENV) or None
    redis_url = pytestconfig.getoption("wagerlab_redis") or os.environ.get(REDIS_URL_ENV) or None
    return Backends(db_url=db_url, redis_url=redis_url)


# -- whole scenarios -- #


@pytest.fixture
def wagerlab_run_scenario(tmp_path: Path, wagerlab_backends: Backends) -> Callable[..., RunResult]:
    """Return a function that runs a scenario file (or `Scenario`) and returns its result."""
    from wagerlab.sim.runner import run_scenario
    from wagerlab.sim.scenario import load_scenario

    def run(scenario: str | Path | Scenario, *, seed: int | None = None) -> RunResult:
        loaded = load_scenario(Path(scenario)) if isinstance(scenario, (str, Path)) else scenario
        chosen_seed = loaded.seed if seed is None else seed
        run_dir = tmp_path / f"{loaded.name}-seed{chosen_seed}"
        return run_scenario(loaded, seed=chosen_seed, run_dir=run_dir, show_progress=False, backends=wagerlab_backends)

    return run


@pytest.fixture
def wagerlab_assert_invariants() -> Callable[[Any], None]:
    """Return a function that fails the test unless every invariant of a run held."""
    return assert_invariants


def assert_invariants(result: RunResult | Mapping[str, Any] | list[InvariantResult]) -> None:
    """Raise InvariantsFailed naming each invariant that failed in a run, report or check."""
    if isinstance(result, list):
        entries = [item.as_dict() for item in result]
        errors: list[str] = []
    else:
        report = result if isinstance(result, Mapping) else result.report
        entries, errors = list(report["invariants"]), list(report.get("errors", []))
    failed = [f"{entry['name']}: {entry['detail']}" for entry in entries if not entry["ok"]]
    if failed or errors:
        raise InvariantsFailed("; ".join(failed + [f"run error: {error}" for error in errors]))


# -- a running platform -- #


@dataclass
class RunningPlatform:
    """A platform started for the test session, with helpers to drive and check it."""

    platform: Platform
    chain: Web3
    engine: Engine

    @property
    def config(self) -> PlatformConfig:
        return self.platform.config

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.admin_token}"}

    def advance_time(self, seconds: int) -> int:
        """Move the chain clock forward, mine a block and return that block's timestamp."""
        if seconds < 0:
            raise ValueError(f"chain time only moves forward: seconds must be >= 0, got {seconds}")
        self.chain.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        self.chain.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        return int(self.chain.eth.get_block("latest")["timestamp"])

    def wait_for_monitors(self, timeout: float = CATCH_UP_TIMEOUT_SECONDS) -> None:
        """Wait until the database contains every monitored log the chain has."""
        from sqlmodel import Session, func, select

        from wagerlab.platform.db import ChainEvent
        from wagerlab.sim.invariants import monitored_log_count

        deadline = time.monotonic() + timeout
        while True:
            expected = monitored_log_count(self.chain, self.config.deployment)
            with Session(self.engine) as session:
                applied = session.exec(select(func.count()).select_from(ChainEvent)).one()
            if applied >= expected:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"monitors applied {applied} of {expected} logs within {timeout} s")
            time.sleep(0.2)

    def check_invariants(self) -> list[InvariantResult]:
        """Wait for the monitors, then compare the database with the chain."""
        from wagerlab.sim import invariants

        self.wait_for_monitors()
        chain = invariants.read_chain(self.chain, self.config.deployment)
        db = invariants.read_db(self.engine)
        return [
            invariants.check_conservation(chain, db),
            invariants.check_ledger(db),
            invariants.check_exactly_once(chain, db),
            invariants.check_bets(chain, db),
            invariants.check_settlement(chain, db),
        ]

    def assert_invariants(self) -> None:
        assert_invariants(self.check_invariants())


@pytest.fixture(scope="session")
def wagerlab_platform(tmp_path_factory: pytest.TempPathFactory, wagerlab_backends: Backends) -> Iterator[RunningPlatform]:
    """Start the chain node and every platform service once per session; stop them after."""
    from web3 import HTTPProvider, Web3

    from wagerlab.platform.db import make_engine
    from wagerlab.sim.up import UpOptions, start_platform

    run_dir = tmp_path_factory.mktemp("wagerlab-platform")
    options = UpOptions(run_dir=run_dir, db_url=wagerlab_backends.db_url, redis_url=wagerlab_backends.redis_url)
    platform = start_platform(options)
    engine = make_engine(platform.config.db_url)
    try:
        chain = Web3(HTTPProvider(platform.config.rpc_url, request_kwargs={"timeout": HTTP_TIMEOUT_SECONDS}))
        yield RunningPlatform(platform, chain, engine)
    finally:
        engine.dispose()
        platform.stop()


@pytest.fixture
def wagerlab_api(wagerlab_platform: RunningPlatform) -> Iterator[httpx.Client]:
    """An HTTP client whose base URL is the platform's REST API."""
    import httpx

    with httpx.Client(base_url=wagerlab_platform.config.api_url, timeout=HTTP_TIMEOUT_SECONDS) as client:
        yield client


@pytest.fixture
def wagerlab_chain(wagerlab_platform: RunningPlatform) -> Web3:
    """A web3 client on the platform's chain node."""
    return wagerlab_platform.chain


@pytest.fixture
def wagerlab_websocket(wagerlab_platform: RunningPlatform) -> Iterator[ClientConnection]:
    """A WebSocket connection to the chain node's JSON-RPC endpoint, e.g. for eth_subscribe."""
    from websockets.sync.client import connect

    with connect(wagerlab_platform.config.ws_url) as connection:
        yield connection


@pytest.fixture
def wagerlab_advance_time(wagerlab_platform: RunningPlatform) -> Callable[[int], int]:
    """Return a function that moves chain time forward by N seconds and returns the new time."""
    return wagerlab_platform.advance_time
