"""`wagerlab run`: start the stack, drive the scenario's actors, check the invariants."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select
from web3 import Web3
from web3.exceptions import Web3RPCError

from wagerlab.chain.accounts import dev_roles
from wagerlab.chain.compiler import CompilerError, load_artifacts
from wagerlab.chain.deploy import DeploymentError, deploy_platform
from wagerlab.chain.external import ExternalNodeError
from wagerlab.platform.config import PlatformConfig
from wagerlab.platform.db import Alert, Bet, BetStatus, ChainEvent, User
from wagerlab.platform.reconcile import ReconcileError, reconcile
from wagerlab.sim import faults
from wagerlab.sim.actors import (
    ActorError,
    Bettor,
    OddsFeed,
    Operator,
    Reporters,
    World,
    build_encoders,
)
from wagerlab.sim.apiclient import ApiError
from wagerlab.sim.attacks import AttackContext, AttackResult, run_attack
from wagerlab.sim.backends import Backends, clear_cache, prepare_database, sqlite_url
from wagerlab.sim.chainsetup import open_chain, platform_config
from wagerlab.sim.invariants import InvariantResult, check_all, monitored_log_count
from wagerlab.sim.outages import RetryInternalErrors
from wagerlab.sim.progress import ProgressView
from wagerlab.sim.report import build_report, iso_time, write_report
from wagerlab.sim.report_html import write_report_html
from wagerlab.sim.rundir import claim_run_dir
from wagerlab.sim.scenario import FaultSpec, Scenario
from wagerlab.sim.stack import Stack, StackError, free_port
from wagerlab.sim.trace import Trace
from wagerlab.sim.wallet import RpcClient, RpcError, TransactionReverted, Wallet

logger = logging.getLogger(__name__)

BETTOR_ETHER = 10**18
CATCH_UP_TIMEOUT_SECONDS = 120.0
CATCH_UP_STALL_SECONDS = 30.0
"""Longer than a monitor restart with backoff takes, so only a lost log ends the wait early."""
MARKET_OPEN_SECONDS = 7 * 24 * 3600
HTTP_POOL_SIZE = 64
KEEPALIVE_EXPIRY_SECONDS = 2.0
"""Shorter than uvicorn's 5 s keep-alive, so the client never reuses a connection the
server is closing at that moment (which surfaces as httpx.ReadError)."""

STARTUP_FAILURES = (StackError, DeploymentError, CompilerError, ExternalNodeError)
ACTOR_FAILURES = (ActorError, ApiError, RpcError, TransactionReverted, TimeoutError, httpx.HTTPError)


class RunInterrupted(Exception):
    """SIGINT or SIGTERM stopped a run; the stack is stopped and a partial report written."""

    def __init__(self, report_path: Path):
        self.report_path = report_path
        super().__init__(f"the run was interrupted; partial report: {report_path}")


@dataclass
class RunResult:
    report: dict[str, Any]
    report_path: Path

    @property
    def ok(self) -> bool:
        return bool(self.report["ok"])

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


@dataclass
class RunContext:
    scenario: Scenario
    seed: int
    run_dir: Path
    config: PlatformConfig
    engine: Engine
    w3: Web3
    stack: Stack
    world: World | None = None
    errors: list[str] = field(default_factory=list)
    injected: list[dict[str, Any]] = field(default_factory=list)
    window_faults: list[asyncio.Task[None]] = field(default_factory=list)
    """Faults that hold for seconds while the run goes on; awaited before the run ends."""
    attacks: list[AttackResult] = field(default_factory=list)
    bettor_logins: list[tuple[str, str]] = field(default_factory=list)


def run_scenario(
    scenario: Scenario,
    *,
    seed: int,
    run_dir: Path,
    show_progress: bool = True,
    backends: Backends | None = None,
    rpc_url: str | None = None,
) -> RunResult:
    """Run one scenario end to end and write RUN_DIR/report.json, report.html and logs/runner.log.

    `rpc_url` names an external node (anvil, Hardhat) to deploy on instead of starting
    `wagerlab chain`; its dev accounts 1..7 are funded first (see `wagerlab.chain.external`).

    `backends` names a database and a Redis server to use instead of the embedded pair;
    the run empties their platform tables and cache keys first (see `wagerlab.sim.backends`).
    """
    run_lock = claim_run_dir(run_dir)
    started_at = time.time()
    stack = Stack(run_dir)
    log_handler = _log_to_file(run_dir / "logs" / "runner.log")
    interrupted = False
    try:
        try:
            context = _start(scenario, seed, run_dir, stack, backends or Backends(), rpc_url)
        except STARTUP_FAILURES as err:
            logger.error("the stack failed to start: %s", err)
            report = build_report(
                scenario=scenario,
                seed=seed,
                started_at=started_at,
                finished_at=time.time(),
                counts={},
                invariants=[],
                trace=None,
                faults=[],
                alerts=[],
                errors=[f"the stack failed to start: {err}"],
                deployment=None,
            )
            return RunResult(report, _write_reports(run_dir, report, None, None))
        try:
            asyncio.run(_drive(context, show_progress))
        except ACTOR_FAILURES + (StackError, faults.FaultError) as err:
            # httpx time-outs have an empty message, so the error's type is named too.
            logger.error("the run stopped early: %r", err)
            # The traceback goes to runner.log only (INFO), not to the console.
            logger.info("traceback of the error that stopped the run", exc_info=err)
            context.errors.append(f"{type(err).__name__}: {err}")
        except KeyboardInterrupt:
            logger.warning("the run was interrupted; stopping the stack and writing a partial report")
            context.errors.append("interrupted before the run finished (SIGINT or SIGTERM); invariants not checked")
            interrupted = True
        invariants = []
        if not interrupted:
            _reconcile(context)
            invariants = _check(context)
        report = build_report(
            scenario=scenario,
            seed=seed,
            started_at=started_at,
            finished_at=time.time(),
            counts=_counts(context),
            invariants=invariants,
            trace=context.world.trace if context.world else None,
            faults=context.injected,
            attacks=[result.as_dict() for result in context.attacks],
            alerts=_alerts(context.engine),
            errors=context.errors,
            deployment=context.config.deployment,
        )
        result = RunResult(report, _write_reports(run_dir, report, context.world.trace if context.world else None, context.engine))
        if interrupted:
            raise RunInterrupted(result.report_path)
        return result
    finally:
        stack.stop()
        run_lock.release()
        logging.getLogger().removeHandler(log_handler)
        log_handler.close()


def _write_reports(run_dir: Path, report: dict[str, Any], trace: Trace | None, engine: Engine | None) -> Path:
    """Write report.json, then report.html beside it; return the path of report.json."""
    path = write_report(run_dir, report, trace)
    try:
        write_report_html(run_dir, report, engine)
    except Exception:
        # The plots are a view of the run: a bug in drawing them must not change its verdict.
        logger.exception("writing %s failed; report.json is complete", run_dir / "report.html")
    return path


def _log_to_file(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


def _start(
    scenario: Scenario, seed: int, run_dir: Path, stack: Stack, backends: Backends, rpc_url: str | None = None
) -> RunContext:
    load_artifacts()
    chain = open_chain(stack, rpc_url)
    w3 = chain.w3
    w3.middleware_onion.add(RetryInternalErrors, name="retry_internal_errors")
    deployment = deploy_platform(w3, dev_roles(), house_funding=scenario.house_funding)
    logger.info("contracts deployed: sportsbook %s, oracle %s", deployment.sportsbook, deployment.oracle)

    config = platform_config(
        chain,
        deployment,
        db_url=backends.db_url or sqlite_url(run_dir),
        redis_url=backends.redis_url,
        gateway_port=free_port(),
        trusted_proxies=list(scenario.gateway.trusted_proxies),
        security=dict(scenario.gateway.limits),
        forensic_log_path=str((run_dir / "forensics.jsonl").resolve()),
        confirmations=scenario.platform.confirmations,
        cache_strategy=scenario.platform.cache_strategy,
    )
    config_path = run_dir / "platform.json"
    config.dump(config_path)
    engine = prepare_database(config.db_url)
    if config.redis_url is not None:
        clear_cache(config.redis_url)

    stack.start_services(config_path, {"chainapi": config.chainapi_port, "gateway": config.gateway_port, "monitors": config.monitors_port, "api": config.api_port, "stream": config.stream_port})
    return RunContext(scenario, seed, run_dir, config, engine, w3, stack)


async def _drive(context: RunContext, show_progress: bool) -> None:
    scenario = context.scenario
    limits = httpx.Limits(
        max_connections=HTTP_POOL_SIZE, max_keepalive_connections=HTTP_POOL_SIZE, keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS
    )
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        rpc = RpcClient(context.config.rpc_url, http)
        artifacts = load_artifacts()
        context.world = world = World(
            scenario=scenario,
            seed=context.seed,
            http=http,
            rpc=rpc,
            api_url=context.config.gateway_url,
            admin_token=context.config.admin_token,
            chain_id=context.config.deployment.chain_id,
            addresses={
                "token": context.config.deployment.token,
                "sportsbook": context.config.deployment.sportsbook,
                "oracle": context.config.deployment.oracle,
            },
            encoders=build_encoders({name: artifact.abi for name, artifact in artifacts.items()}),
        )
        bettors = [Bettor(world, index) for index in range(scenario.bettors.count)]
        context.bettor_logins = [(bettor.username, bettor.password) for bettor in bettors]
        total_bets = scenario.bettors.count * scenario.bettors.bets_per_bettor

        with ProgressView(world, total_bets, enabled=show_progress) as view:
            watchdog = asyncio.create_task(_watch_stack(context.stack))
            try:
                await _phase(context, view, "setup", _setup(context, world))
                await _phase(context, view, "onboarding", _onboard(world, bettors))
                await _phase(context, view, "betting", _bet(world, bettors, total_bets))
                await _phase(context, view, "settlement", _settle(context, world))
                await _phase(context, view, "claims", _claim(context, world, bettors))
                await _end_window_faults(context)
            finally:
                for task in context.window_faults:
                    task.cancel()
                watchdog.cancel()


async def _phase(context: RunContext, view: ProgressView, name: str, work: Awaitable[None]) -> None:
    view.phase(name)
    logger.info("phase %s started", name)
    midway = [fault for fault in context.scenario.faults if fault.at == f"mid-{name}"]
    injector = asyncio.create_task(_inject_midway(context, name, midway)) if midway else None
    try:
        await work
    except BaseException:
        if injector is not None:
            injector.cancel()
        raise
    if injector is not None:
        await injector
    for fault in context.scenario.faults:
        if fault.at == name:
            await _inject(context, fault)
    for attack in context.scenario.attacks:
        if attack.at == name and context.world is not None:
            attack_context = AttackContext(context.world, context.config, context.engine, context.w3, context.bettor_logins)
            context.attacks.append(await run_attack(attack.kind, attack.options, name, attack_context))


async def _inject(context: RunContext, fault: FaultSpec) -> None:
    """Inject a fault; one that holds for seconds runs in the background while the next work starts."""
    fault_context = faults.FaultContext(context.engine, context.w3, context.config, context.stack, fault.options)

    async def run() -> None:
        context.injected.append(await asyncio.to_thread(faults.inject, fault.kind, fault.at, fault_context))

    if fault.kind in faults.WINDOW_FAULTS:
        context.window_faults.append(asyncio.create_task(run(), name=f"fault-{fault.kind}"))
    else:
        await run()


async def _end_window_faults(context: RunContext) -> None:
    """Wait until every fault window has closed, then until the monitors have applied what it held up."""
    if not context.window_faults:
        return
    await asyncio.gather(*context.window_faults)
    await _wait_for_monitors(context)


def _phase_progress(world: World, phase: str) -> tuple[int, int]:
    """Return (done, total) of the work of a phase that has mid-phase faults."""
    counters, bettors = world.counters, world.scenario.bettors
    return {
        "onboarding": (counters.deposits, bettors.count),
        "betting": (counters.bets_placed, bettors.count * bettors.bets_per_bettor),
        "claims": (counters.claimers_done, bettors.count),
    }[phase]


async def _inject_midway(context: RunContext, phase: str, midway: list[FaultSpec]) -> None:
    """Inject faults once half of the phase's work is done, while actors and monitors are busy."""
    assert context.world is not None
    while True:
        done, total = _phase_progress(context.world, phase)
        if done * 2 >= total:
            break
        await asyncio.sleep(0.02)
    for fault in midway:
        await _inject(context, fault)


async def _watch_stack(stack: Stack) -> None:
    """Stop the run as soon as a platform process dies, instead of waiting for time-outs."""
    while True:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(stack.ensure_running)


async def _gather_limited(limit: int, jobs: Iterable[Callable[[], Awaitable[None]]]) -> None:
    semaphore = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[None]]) -> None:
        async with semaphore:
            await job()

    try:
        async with asyncio.TaskGroup() as group:
            for job in jobs:
                group.create_task(run(job))
    except BaseExceptionGroup as group_error:
        # Report the first actor's failure as the run's error; the others are logged.
        first, *rest = group_error.exceptions
        for error in rest:
            logger.error("another actor failed too: %s", error)
        raise first from group_error


async def _setup(context: RunContext, world: World) -> None:
    latest = await asyncio.to_thread(context.w3.eth.get_block, "latest")
    await Operator(world).create_markets(closes_at=latest["timestamp"] + MARKET_OPEN_SECONDS)


async def _onboard(world: World, bettors: list[Bettor]) -> None:
    funder = Wallet(dev_roles().funder, world.rpc, world.chain_id)
    await funder.transfer_to_many([bettor.account.address for bettor in bettors], BETTOR_ETHER)
    await _gather_limited(world.scenario.bettors.concurrency, [bettor.onboard for bettor in bettors])


async def _bet(world: World, bettors: list[Bettor], total_bets: int) -> None:
    markets = world.scenario.markets
    feed = asyncio.create_task(OddsFeed(world).run(total_bets))
    await _gather_limited(world.scenario.bettors.concurrency, [lambda b=bettor: b.place_bets(markets) for bettor in bettors])
    await feed


async def _settle(context: RunContext, world: World) -> None:
    await _wait_for_monitors(context)
    operator = Operator(world)
    reporters = Reporters(world, dev_roles().reporters)
    for market in world.scenario.markets:
        await operator.close_market(market.market_id)
        await reporters.report(market, reporters.draw_result(market), dissent=world.scenario.oracle.dissent)
    await _wait_for_monitors(context)


async def _claim(context: RunContext, world: World, bettors: list[Bettor]) -> None:
    await _gather_limited(world.scenario.bettors.concurrency, [bettor.claim_winnings for bettor in bettors])
    await _wait_for_monitors(context)


async def _wait_for_monitors(context: RunContext) -> None:
    """Wait until the database contains as many applied events as the chain has monitored logs."""
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_SECONDS
    last_applied, last_progress = -1, time.monotonic()
    while True:
        try:
            expected = await asyncio.to_thread(monitored_log_count, context.w3, context.config.deployment)
        except Web3RPCError as err:
            # An `rpc_faults` window fails a share of the node's responses; ask again.
            logger.warning("counting the monitored logs failed, retrying: %s", err)
            await asyncio.sleep(0.2)
            continue
        applied = await asyncio.to_thread(_applied_event_count, context.engine)
        if applied >= expected:
            return
        now = time.monotonic()
        if applied != last_applied:
            last_applied, last_progress = applied, now
        if now - last_progress > CATCH_UP_STALL_SECONDS:
            raise ActorError(f"monitors stalled at {applied} of {expected} logs: no progress for {CATCH_UP_STALL_SECONDS} s")
        if now > deadline:
            raise ActorError(f"monitors applied {applied} of {expected} logs within {CATCH_UP_TIMEOUT_SECONDS} s")
        await asyncio.sleep(0.2)


def _alerts(engine: Engine) -> list[dict[str, Any]]:
    with Session(engine) as session:
        rows = session.exec(select(Alert).order_by(Alert.id)).all()
        return [
            {"rule": row.rule, "severity": row.severity.value, "at": iso_time(row.created_at / 1000), "detail": row.detail}
            for row in rows
        ]


def _applied_event_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(ChainEvent)).one()


def _reconcile(context: RunContext) -> None:
    """Reconcile the database with the chain when the scenario asks for it, so the check sees the repair."""
    if not context.scenario.platform.reconcile:
        return
    try:
        report = reconcile(context.engine, context.w3, context.config, timeout=CATCH_UP_TIMEOUT_SECONDS)
    except ReconcileError as err:
        logger.error("reconciliation before the invariant check failed: %s", err)
        context.errors.append(f"reconciliation before the invariant check failed: {err}")
        return
    logger.info("reconciliation at block %s made %d correction(s)", report.block_number, len(report.corrections))


def _check(context: RunContext) -> list[InvariantResult]:
    bettors = context.scenario.bettors
    completed = not context.errors
    return check_all(
        context.w3,
        context.config.deployment,
        context.engine,
        expected_bets=bettors.count * bettors.bets_per_bettor,
        expect_settled=completed,
    )


def _counts(context: RunContext) -> dict[str, int]:
    counters = context.world.counters if context.world else None
    with Session(context.engine) as session:
        def events(*names: str) -> int:
            query = select(func.count()).select_from(ChainEvent).where(ChainEvent.event.in_(names))
            return session.exec(query).one()

        settled = session.exec(
            select(func.count()).select_from(Bet).where(Bet.status != BetStatus.OPEN)
        ).one()
        return {
            "users": session.exec(select(func.count()).select_from(User)).one(),
            "deposits_credited": events("Deposited"),
            "bets_placed": events("BetPlaced"),
            "bets_settled": settled,
            "payouts_claimed": events("BetClaimed", "BetRefunded"),
            "odds_reads": counters.odds_reads if counters else 0,
            "odds_moves": counters.odds_moves if counters else 0,
            "bet_retries": counters.bet_retries if counters else 0,
            "oracle_reports": counters.reports if counters else 0,
        }

