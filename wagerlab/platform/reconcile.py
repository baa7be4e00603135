"""Reconciliation: compare the database with the chain, and correct the database.

The chain is the authority. A round reads the database in one transaction, takes the block
that every monitor has finished, reads the chain's state at that block, and compares
balances (available and staked), bets and market results. Each divergence is corrected in
its own transaction, recorded as a `corrections` row (what, before, after, why) and raised
as an alert.

Comparing against the block the monitors finished, rather than the head, keeps a round
from "correcting" an event a monitor has not applied yet. A round therefore needs the
monitors to agree on one finished block: while they are spread over several blocks it
raises `ReconcileNotReadyError`, and the scheduled loop tries again at its next tick.
Before each correction the round checks, under the write lock, that the cursors still name
that block and that the value it corrects has not changed since it was read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from web3 import HTTPProvider, Web3

from wagerlab.chain.contracts import contract
from wagerlab.chain.sportsbook import ChainBet, read_balances, read_bets, read_markets
from wagerlab.platform.alerts import raise_alert
from wagerlab.platform.config import PlatformConfig
from wagerlab.platform.db import Account, AlertSeverity, Bet, BetStatus, Correction, Market, MarketStatus, MonitorCursor, write_session
from wagerlab.platform.monitors import cursor
from wagerlab.platform.monitors.events import ChainLog, DecodedEvent, EventCodec
from wagerlab.platform.monitors.ledger import Leg, available, staked, write_correction_legs

logger = logging.getLogger(__name__)

MONITOR_NAMES = ("deposits", "bets", "settlement")
"""The monitors whose cursors a round must find at one finished block."""
RECONCILIATION = "reconciliation"
"""Ledger account on the other side of a balance correction: tokens the database had wrong."""
ALERT_RULE = "reconciliation_correction"
ALERT_SOURCE = "reconcile"

CHAIN_MARKET_STATUS = {1: MarketStatus.OPEN, 2: MarketStatus.CLOSED, 3: MarketStatus.SETTLED, 4: MarketStatus.VOIDED}
"""Database market status for each `Sportsbook.MarketStatus` value; 0 (none) has no row."""
BET_FIELDS = ("bettor", "market_id", "outcome", "stake", "odds", "payout")


class ReconcileError(Exception):
    """Base of the errors a reconciliation round raises."""


class ReconcileNotReadyError(ReconcileError):
    """The monitors have not finished one common block, so there is nothing safe to compare."""


class _SnapshotMoved(Exception):
    """Raised inside a correction's transaction when a monitor moved since the round's read."""


@dataclass
class ChainView:
    """The Sportsbook's state at one block: what the database should mirror."""

    block_number: int
    balances: dict[str, int] = field(default_factory=dict)
    staked: dict[str, int] = field(default_factory=dict)
    bets: dict[int, ChainBet] = field(default_factory=dict)
    bet_logs: dict[int, ChainLog] = field(default_factory=dict)
    bet_nonces: dict[int, int] = field(default_factory=dict)
    market_status: dict[int, int] = field(default_factory=dict)
    winning_outcome: dict[int, int] = field(default_factory=dict)
    total_payout: dict[int, int] = field(default_factory=dict)


@dataclass
class DbView:
    finished_block: int
    accounts: dict[str, tuple[int, int]]
    bets: dict[int, Bet]
    markets: dict[int, Market]


@dataclass(frozen=True)
class PlannedCorrection:
    """One divergence and the function that repairs it inside a write transaction."""

    kind: str
    subject: str
    before: dict[str, Any]
    after: dict[str, Any]
    reason: str
    apply: Callable[[Session, int], None]
    """Writes the repair; receives the session and the new `corrections` row's id."""
    still_current: Callable[[Session], bool]
    """Tells whether the database still holds `before`, checked under the write lock."""


@dataclass
class ReconcileReport:
    block_number: int
    corrections: list[Correction] = field(default_factory=list)
    stale: int = 0
    """Planned corrections dropped because the value changed after the round read it."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "block_number": self.block_number,
            "corrections": [_describe(row) for row in self.corrections],
            "stale": self.stale,
        }


# -- reading -- #


def read_database(engine: Engine) -> DbView:
    """Read cursors, balances, bets and markets in one transaction.

    Raises ReconcileNotReadyError unless every monitor has finished the same block.
    """
    with Session(engine) as session, session.begin():
        finished = finished_block(session)
        accounts = {row.address: (row.available, row.staked) for row in session.exec(select(Account))}
        bets = {row.bet_id: row for row in session.exec(select(Bet))}
        markets = {row.market_id: row for row in session.exec(select(Market))}
        session.expunge_all()
    return DbView(finished, accounts, bets, markets)


def finished_block(session: Session) -> int:
    """Return the block every monitor has finished; raise ReconcileNotReadyError if there is none."""
    positions: dict[str, cursor.Position | None] = {}
    for name in MONITOR_NAMES:
        row = session.get(MonitorCursor, name)
        positions[name] = None if row is None else (row.block_number, row.log_index)
    # A cursor between two logs of one block (log index >= 0) has not finished that block.
    between_blocks = [position for position in positions.values() if position is not None and position[1] == -1]
    blocks = {position[0] - 1 for position in between_blocks}
    if len(between_blocks) != len(MONITOR_NAMES) or len(blocks) != 1:
        raise ReconcileNotReadyError(f"monitors have not finished one common block; cursors: {positions}")
    return blocks.pop()


def read_chain_view(w3: Web3, config: PlatformConfig, block_number: int, addresses: Iterable[str]) -> ChainView:
    """Read balances, bets and markets from the Sportsbook at `block_number`."""
    deployment = config.deployment
    book = contract(w3, "Sportsbook", deployment.sportsbook)
    view = ChainView(block_number)
    known_addresses = set(addresses)
    market_ids: set[int] = set()

    for event in _read_events(w3, config, block_number):
        args = event.args
        known_addresses.update(value for key, value in args.items() if key in ("account", "bettor"))
        if "marketId" in args:
            market_ids.add(args["marketId"])
        if event.name == "BetPlaced":
            view.bet_logs[args["betId"]] = event.log
            view.bet_nonces[args["betId"]] = args["nonce"]
        elif event.name == "MarketSettled":
            view.total_payout[args["marketId"]] = args["totalPayout"]

    view.bets = read_bets(book, block_number)
    market_ids.update(bet.market_id for bet in view.bets.values())

    for market_id, market in read_markets(book, market_ids, block_number).items():
        view.market_status[market_id] = market.status
        view.winning_outcome[market_id] = market.winning_outcome

    view.balances = read_balances(book, known_addresses, block_number)
    view.staked = {address: 0 for address in view.balances}
    for bet in view.bets.values():
        if view.market_status.get(bet.market_id) in (1, 2):
            view.staked[bet.bettor] = view.staked.get(bet.bettor, 0) + bet.stake
    return view


def _read_events(w3: Web3, config: PlatformConfig, last_block: int) -> Iterator[DecodedEvent]:
    codec = EventCodec.for_events(["Deposited", "Withdrawn", "BetPlaced", "MarketSettled"])
    chunk = max(1, config.log_chunk_blocks)
    for first in range(config.deployment.start_block, last_block + 1, chunk):
        last = min(first + chunk - 1, last_block)
        criteria: Any = {"address": config.deployment.sportsbook, "topics": [codec.topics], "fromBlock": first, "toBlock": last}
        for raw in w3.eth.get_logs(criteria):
            yield codec.decode(ChainLog.from_rpc(raw))


# -- comparing -- #


def plan_corrections(chain: ChainView, db: DbView) -> list[PlannedCorrection]:
    """Compare the two views and return one planned correction per divergence."""
    planned: list[PlannedCorrection] = []
    planned += _plan_bets(chain, db)
    planned += _plan_markets(chain, db)
    planned += _plan_balances(chain, db)
    return planned


def expected_bet_status(bet: ChainBet, market_status: int, winning_outcome: int) -> BetStatus:
    """Return the status the database should give a bet, from its market and claim on chain."""
    if market_status == 3:
        if bet.outcome != winning_outcome:
            return BetStatus.LOST
        return BetStatus.CLAIMED if bet.claimed else BetStatus.WON
    if market_status == 4:
        return BetStatus.REFUNDED if bet.claimed else BetStatus.VOIDED
    return BetStatus.OPEN


def _plan_bets(chain: ChainView, db: DbView) -> list[PlannedCorrection]:
    planned = []
    for bet_id, bet in sorted(chain.bets.items()):
        row = db.bets.get(bet_id)
        if row is None:
            planned.append(_insert_bet(chain, bet))
            continue
        expected = {name: getattr(bet, name) for name in BET_FIELDS}
        actual = {name: getattr(row, name) for name in BET_FIELDS}
        if expected != actual:
            changed = [name for name in BET_FIELDS if expected[name] != actual[name]]
            before = {name: actual[name] for name in changed}
            after = {name: expected[name] for name in changed}
            planned.append(_update_bet(bet_id, "bet_fields", before, after, f"bet {bet_id} differs from the chain in {changed}"))
        status = expected_bet_status(bet, chain.market_status[bet.market_id], chain.winning_outcome[bet.market_id])
        if row.status != status:
            before, after = {"status": row.status.value}, {"status": status.value}
            reason = f"bet {bet_id} has claimed={bet.claimed} on a market with chain status {chain.market_status[bet.market_id]}"
            planned.append(_update_bet(bet_id, "bet_status", before, after, reason))
    for bet_id in sorted(set(db.bets) - set(chain.bets)):
        planned.append(_delete_bet(db.bets[bet_id], chain.block_number))
    return planned


def _update_bet(bet_id: int, kind: str, before: dict[str, Any], after: dict[str, Any], reason: str) -> PlannedCorrection:
    def still_current(session: Session) -> bool:
        row = session.get(Bet, bet_id)
        return row is not None and _bet_values(row, before) == before

    def apply(session: Session, _correction_id: int) -> None:
        row = session.get(Bet, bet_id)
        assert row is not None
        for name, value in after.items():
            setattr(row, name, BetStatus(value) if name == "status" else value)
        session.add(row)

    return PlannedCorrection(kind, f"bet {bet_id}", before, after, reason, apply, still_current)


def _bet_values(row: Bet, names: Iterable[str]) -> dict[str, Any]:
    return {name: (row.status.value if name == "status" else getattr(row, name)) for name in names}


def _insert_bet(chain: ChainView, bet: ChainBet) -> PlannedCorrection:
    log = chain.bet_logs.get(bet.bet_id)
    status = expected_bet_status(bet, chain.market_status[bet.market_id], chain.winning_outcome[bet.market_id])
    values: dict[str, Any] = {name: getattr(bet, name) for name in BET_FIELDS}
    values.update(
        status=status.value,
        nonce=str(chain.bet_nonces.get(bet.bet_id, "")),
        tx_hash=log.tx_hash if log else "",
        block_number=log.block_number if log else chain.block_number,
    )

    def still_current(session: Session) -> bool:
        return session.get(Bet, bet.bet_id) is None

    def apply(session: Session, _correction_id: int) -> None:
        session.add(Bet(bet_id=bet.bet_id, **{**values, "status": status}))

    reason = f"bet {bet.bet_id} exists on chain but has no row in bets"
    return PlannedCorrection("bet_missing", f"bet {bet.bet_id}", {}, values, reason, apply, still_current)


def _delete_bet(row: Bet, block_number: int) -> PlannedCorrection:
    before = _bet_values(row, (*BET_FIELDS, "status"))

    def still_current(session: Session) -> bool:
        return session.get(Bet, row.bet_id) is not None

    def apply(session: Session, _correction_id: int) -> None:
        current = session.get(Bet, row.bet_id)
        assert current is not None
        session.delete(current)

    reason = f"bet {row.bet_id} has a row in bets but does not exist on chain at block {block_number}"
    return PlannedCorrection("bet_extra", f"bet {row.bet_id}", before, {}, reason, apply, still_current)


def _plan_markets(chain: ChainView, db: DbView) -> list[PlannedCorrection]:
    planned = []
    for market_id, row in sorted(db.markets.items()):
        status_code = chain.market_status.get(market_id, 0)
        if status_code == 0:
            continue  # created in the database ahead of its transaction, or never on chain
        expected = {"status": CHAIN_MARKET_STATUS[status_code].value, "winning_outcome": None, "total_payout": None}
        if status_code == 3:
            expected.update(winning_outcome=chain.winning_outcome[market_id], total_payout=chain.total_payout.get(market_id))
        actual = {"status": row.status.value, "winning_outcome": row.winning_outcome, "total_payout": row.total_payout}
        if status_code == 1 and row.status == MarketStatus.CLOSED:
            continue  # the api marks a market closed once its closeMarket is mined, ahead of the monitors
        if expected != actual:
            reason = f"market {market_id} has chain status {status_code} at block {chain.block_number}"
            planned.append(_update_market(market_id, actual, expected, reason))
    return planned


def _update_market(market_id: int, before: dict[str, Any], after: dict[str, Any], reason: str) -> PlannedCorrection:
    def still_current(session: Session) -> bool:
        row = session.get(Market, market_id)
        return row is not None and (row.status.value, row.winning_outcome, row.total_payout) == tuple(before.values())

    def apply(session: Session, _correction_id: int) -> None:
        row = session.get(Market, market_id)
        assert row is not None
        row.status = MarketStatus(after["status"])
        row.winning_outcome = after["winning_outcome"]
        row.total_payout = after["total_payout"]
        session.add(row)

    return PlannedCorrection("market_status", f"market {market_id}", before, after, reason, apply, still_current)


def _plan_balances(chain: ChainView, db: DbView) -> list[PlannedCorrection]:
    planned = []
    for address in sorted(set(chain.balances) | set(db.accounts)):
        db_available, db_staked = db.accounts.get(address, (0, 0))
        chain_available, chain_staked = chain.balances.get(address, 0), chain.staked.get(address, 0)
        if db_available != chain_available:
            planned.append(_move_balance(address, "available", db_available, chain_available, chain.block_number))
        if db_staked != chain_staked:
            planned.append(_move_balance(address, "staked", db_staked, chain_staked, chain.block_number))
    return planned


def _move_balance(address: str, column: str, before: int, after: int, block_number: int) -> PlannedCorrection:
    account_name = available(address) if column == "available" else staked(address)
    delta = after - before

    def still_current(session: Session) -> bool:
        row = session.get(Account, address)
        return (getattr(row, column) if row else 0) == before

    def apply(session: Session, correction_id: int) -> None:
        write_correction_legs(session, correction_id, [Leg(RECONCILIATION, -delta), Leg(account_name, delta)])

    source = "Sportsbook.balanceOf" if column == "available" else "the stakes of its bets in open and closed markets"
    reason = f"{column} balance of {address} is {before} in the database, {after} on chain ({source}) at block {block_number}"
    return PlannedCorrection(column, address, {column: before}, {column: after}, reason, apply, still_current)


# -- correcting -- #


def apply_corrections(engine: Engine, block_number: int, planned: list[PlannedCorrection]) -> ReconcileReport:
    """Apply each planned correction in its own transaction, record it and raise an alert."""
    report = ReconcileReport(block_number)
    for item in planned:
        try:
            row = _apply_one(engine, block_number, item)
        except _SnapshotMoved:
            logger.info("reconciliation stopped at block %s: a monitor moved since the round read the database", block_number)
            break
        if row is None:
            report.stale += 1
            logger.info("reconciliation dropped the %s correction of %s: the value changed since the round read it", item.kind, item.subject)
            continue
        report.corrections.append(row)
        raise_alert(engine, ALERT_RULE, AlertSeverity.WARNING, ALERT_SOURCE, _alert_detail(row))
    return report


def _apply_one(engine: Engine, block_number: int, item: PlannedCorrection) -> Correction | None:
    with write_session(engine) as session:
        _lock_cursors(session)
        if finished_block(session) != block_number:
            raise _SnapshotMoved
        if not item.still_current(session):
            return None
        row = Correction(kind=item.kind, subject=item.subject, before=item.before, after=item.after, reason=item.reason, block_number=block_number)
        session.add(row)
        session.flush()
        assert row.id is not None
        item.apply(session, row.id)
    return row


def _lock_cursors(session: Session) -> None:
    """Lock the cursor rows on PostgreSQL so no monitor commits an event during the correction.

    SQLite needs no row lock: `write_session` holds the database's write lock already.
    """
    session.exec(select(MonitorCursor).where(MonitorCursor.monitor.in_(MONITOR_NAMES)).with_for_update()).all()  # type: ignore[attr-defined]


def _alert_detail(row: Correction) -> str:
    return f"corrected {row.kind} of {row.subject}: {row.before} -> {row.after}; {row.reason}"


def _describe(row: Correction) -> dict[str, Any]:
    return {"kind": row.kind, "subject": row.subject, "before": row.before, "after": row.after, "reason": row.reason}


# -- rounds -- #


def reconcile_once(engine: Engine, w3: Web3, config: PlatformConfig) -> ReconcileReport:
    """Run one round; raise ReconcileNotReadyError while the monitors are not at one block."""
    db = read_database(engine)
    if db.finished_block < config.deployment.start_block:
        raise ReconcileNotReadyError(f"monitors have finished block {db.finished_block}, before the start block {config.deployment.start_block}")
    chain = read_chain_view(w3, config, db.finished_block, db.accounts)
    planned = plan_corrections(chain, db)
    report = apply_corrections(engine, db.finished_block, planned)
    if report.corrections:
        logger.warning("reconciliation at block %s made %d correction(s)", report.block_number, len(report.corrections))
    else:
        logger.info("reconciliation at block %s found the database equal to the chain", report.block_number)
    return report


def reconcile(engine: Engine, w3: Web3, config: PlatformConfig, *, timeout: float = 60.0, retry_interval: float = 0.2) -> ReconcileReport:
    """Run one round, waiting up to `timeout` seconds for the monitors to reach one block."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return reconcile_once(engine, w3, config)
        except ReconcileNotReadyError as err:
            if time.monotonic() > deadline:
                raise ReconcileNotReadyError(f"{err}; waited {timeout} s, check that the monitors are running and live") from err
            time.sleep(retry_interval)


async def run_reconciler(engine: Engine, config: PlatformConfig, stop: asyncio.Event, interval: float) -> None:
    """Reconcile every `interval` seconds until `stop` is set; rounds that find the monitors busy are skipped."""
    w3 = Web3(HTTPProvider(config.rpc_url, request_kwargs={"timeout": 30}))
    logger.info("reconciliation scheduled every %.1f s", interval)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
            return
        except TimeoutError:
            pass
        try:
            await asyncio.to_thread(reconcile_once, engine, w3, config)
        except ReconcileNotReadyError as err:
            logger.debug("reconciliation skipped: %s", err)
        except Exception as err:
            logger.error("reconciliation round failed: %s; retrying in %.1f s", err, interval, exc_info=err)
