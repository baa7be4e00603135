"""Invariants a run checks: the database against the chain, which is the authority.

Each check returns an `InvariantResult`. The detail of a failure names the first
offending rows, so a reader can find them in the database and on the chain.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from web3 import Web3

from wagerlab.chain.contracts import contract
from wagerlab.chain.sportsbook import ChainBet, ChainMarket, read_balances, read_bets, read_markets
from wagerlab.odds import payout
from wagerlab.platform.config import Deployment
from wagerlab.platform.db import Account, Bet, BetStatus, ChainEvent, LedgerEntry, Market
from wagerlab.platform.monitors import BetsMonitor, DepositsMonitor, SettlementMonitor

logger = logging.getLogger(__name__)

MONITORED_EVENTS = frozenset().union(*(monitor.handlers for monitor in (DepositsMonitor, BetsMonitor, SettlementMonitor)))
"""Every Sportsbook event some monitor applies, taken from the monitors themselves."""
LOG_CHUNK_BLOCKS = 2_000
MAX_LISTED = 5

STATUS_NAMES = {0: "none", 1: "open", 2: "closed", 3: "settled", 4: "voided"}
DB_STATUS_FOR_CHAIN = {1: "open", 2: "closed", 3: "settled", 4: "voided"}


@dataclass(frozen=True)
class InvariantResult:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class ChainState:
    """Chain state read once per check run."""

    logs: list[dict[str, Any]] = field(default_factory=list)
    bets: dict[int, ChainBet] = field(default_factory=dict)
    markets: dict[int, ChainMarket] = field(default_factory=dict)
    balances: dict[str, int] = field(default_factory=dict)
    house_balance: int = 0
    book_token_balance: int = 0


@dataclass
class DbState:
    accounts: dict[str, Account]
    bets: dict[int, Bet]
    markets: dict[int, Market]
    events: list[ChainEvent]
    ledger: list[LedgerEntry]


def read_chain(w3: Web3, deployment: Deployment) -> ChainState:
    book = contract(w3, "Sportsbook", deployment.sportsbook)
    token = contract(w3, "WagerToken", deployment.token)
    state = ChainState()

    for name, log in _book_logs(w3, book, deployment.start_block):
        decoded = getattr(book.events, name)().process_log(log)
        state.logs.append(
            {"event": name, "tx_hash": Web3.to_hex(log["transactionHash"]), "log_index": log["logIndex"], "args": dict(decoded["args"])}
        )

    state.bets = read_bets(book)

    market_ids = {log["args"]["marketId"] for log in state.logs if "marketId" in log["args"]}
    market_ids |= {bet.market_id for bet in state.bets.values()}
    state.markets = read_markets(book, market_ids)

    addresses = {log["args"]["account"] for log in state.logs if "account" in log["args"]}
    addresses |= {bet.bettor for bet in state.bets.values()}
    state.balances = read_balances(book, addresses)
    state.house_balance = book.functions.houseBalance().call()
    state.book_token_balance = token.functions.balanceOf(book.address).call()
    return state


def _event_signature(abi: dict[str, Any]) -> str:
    return f"{abi['name']}({','.join(item['type'] for item in abi['inputs'])})"


def read_db(engine: Engine) -> DbState:
    with Session(engine) as session:
        return DbState(
            accounts={row.address: row for row in session.exec(select(Account))},
            bets={row.bet_id: row for row in session.exec(select(Bet))},
            markets={row.market_id: row for row in session.exec(select(Market))},
            events=list(session.exec(select(ChainEvent))),
            ledger=list(session.exec(select(LedgerEntry))),
        )


def _result(name: str, problems: list[str], summary: str) -> InvariantResult:
    if not problems:
        return InvariantResult(name, True, summary)
    listed = "; ".join(problems[:MAX_LISTED])
    more = f" (and {len(problems) - MAX_LISTED} more)" if len(problems) > MAX_LISTED else ""
    return InvariantResult(name, False, f"{len(problems)} problem(s): {listed}{more}")


def _open_stakes(chain: ChainState) -> dict[str, int]:
    staked: dict[str, int] = defaultdict(int)
    for bet in chain.bets.values():
        if chain.markets[bet.market_id].status in (1, 2):
            staked[bet.bettor] += bet.stake
    return staked


def check_conservation(chain: ChainState, db: DbState) -> InvariantResult:
    """Check that each address's DB balances equal the chain's and every book token is accounted for."""
    problems = []
    staked = _open_stakes(chain)
    for address in sorted(set(chain.balances) | set(db.accounts)):
        account = db.accounts.get(address)
        db_available, db_staked = (account.available, account.staked) if account else (0, 0)
        chain_available = chain.balances.get(address, 0)
        if db_available != chain_available:
            problems.append(f"{address} available: db {db_available}, chain {chain_available}")
        if db_staked != staked.get(address, 0):
            problems.append(f"{address} staked: db {db_staked}, chain {staked.get(address, 0)}")

    escrow = 0
    for bet in chain.bets.values():
        market = chain.markets[bet.market_id]
        if market.status == 3 and bet.outcome == market.winning_outcome and not bet.claimed:
            escrow += bet.payout
        elif market.status == 4 and not bet.claimed:
            escrow += bet.stake
    escrow += sum(m.total_stake + m.reserve for m in chain.markets.values() if m.status in (1, 2))
    accounted = sum(chain.balances.values()) + chain.house_balance + escrow
    if accounted != chain.book_token_balance:
        problems.append(
            f"Sportsbook holds {chain.book_token_balance} tokens but balances + house + escrow = {accounted}"
        )
    return _result("conservation", problems, f"{len(chain.balances)} accounts match the chain to the smallest unit; book tokens {chain.book_token_balance} all accounted for")


def check_ledger(db: DbState) -> InvariantResult:
    """Check that each event's ledger legs sum to zero and the ledger agrees with the balances."""
    problems = []
    per_event: dict[int, int] = defaultdict(int)
    per_account: dict[str, int] = defaultdict(int)
    for entry in db.ledger:
        per_event[entry.event_id] += entry.amount
        per_account[entry.account] += entry.amount
    problems += [f"event {event_id} legs sum to {total}" for event_id, total in per_event.items() if total != 0]
    for address, account in db.accounts.items():
        if per_account.get(f"available:{address}", 0) != account.available:
            problems.append(f"{address}: ledger available {per_account.get(f'available:{address}', 0)}, balance {account.available}")
        if per_account.get(f"staked:{address}", 0) != account.staked:
            problems.append(f"{address}: ledger staked {per_account.get(f'staked:{address}', 0)}, balance {account.staked}")
    return _result("ledger_balanced", problems, f"{len(db.ledger)} ledger legs over {len(per_event)} events balance")


def check_exactly_once(chain: ChainState, db: DbState) -> InvariantResult:
    """Check that every monitored log of the chain is applied once and nothing else is."""
    on_chain = Counter((log["tx_hash"].lower(), log["log_index"]) for log in chain.logs if log["event"] in MONITORED_EVENTS)
    in_db = Counter((event.tx_hash.lower(), event.log_index) for event in db.events)
    problems = [f"log {key[0]}:{key[1]} missing from the database" for key in on_chain if key not in in_db]
    problems += [f"log {key[0]}:{key[1]} applied {count} times" for key, count in in_db.items() if count > 1]
    problems += [f"database event {key[0]}:{key[1]} has no log on the chain" for key in in_db if key not in on_chain]
    return _result("exactly_once", problems, f"{sum(on_chain.values())} logs applied once each")


def check_bets(chain: ChainState, db: DbState) -> InvariantResult:
    """Check that every on-chain bet has one DB bet with equal fields."""
    problems = []
    for bet_id, bet in chain.bets.items():
        row = db.bets.get(bet_id)
        if row is None:
            problems.append(f"bet {bet_id} missing from the database")
            continue
        expected = (bet.bettor, bet.market_id, bet.outcome, bet.stake, bet.odds, bet.payout)
        actual = (row.bettor, row.market_id, row.outcome, row.stake, row.odds, row.payout)
        if expected != actual:
            problems.append(f"bet {bet_id}: chain {expected}, db {actual}")
        db_claimed = row.status in (BetStatus.CLAIMED, BetStatus.REFUNDED)
        if db_claimed != bet.claimed:
            problems.append(f"bet {bet_id}: chain claimed={bet.claimed}, db status {row.status.value}")
    problems += [f"database bet {bet_id} does not exist on the chain" for bet_id in db.bets if bet_id not in chain.bets]
    return _result("bets_match", problems, f"{len(chain.bets)} bets match field by field")


def check_settlement(chain: ChainState, db: DbState) -> InvariantResult:
    """Check markets' status, reserves and payouts against the payout formula to the smallest unit."""
    problems = []
    bets_by_market: dict[int, list[ChainBet]] = defaultdict(list)
    for bet in chain.bets.values():
        bets_by_market[bet.market_id].append(bet)
        if bet.payout != payout(bet.stake, bet.odds):
            problems.append(f"bet {bet.bet_id}: payout {bet.payout}, formula {payout(bet.stake, bet.odds)}")

    settled_totals = {log["args"]["marketId"]: log["args"]["totalPayout"] for log in chain.logs if log["event"] == "MarketSettled"}
    claims = {log["args"]["betId"]: log["args"]["payout"] for log in chain.logs if log["event"] == "BetClaimed"}
    for market_id, market in chain.markets.items():
        row = db.markets.get(market_id)
        if row is None:
            problems.append(f"market {market_id} missing from the database")
        elif row.status.value != DB_STATUS_FOR_CHAIN.get(market.status):
            problems.append(f"market {market_id}: chain {STATUS_NAMES[market.status]}, db {row.status.value}")
        bets = bets_by_market[market_id]
        if market.status in (1, 2):
            problems += _check_reserve(market, bets)
        if market.status == 3:
            winners = [bet for bet in bets if bet.outcome == market.winning_outcome]
            expected_total = sum(bet.payout for bet in winners)
            if settled_totals.get(market_id) != expected_total:
                problems.append(f"market {market_id}: MarketSettled totalPayout {settled_totals.get(market_id)}, winners' payouts {expected_total}")
            if row is not None and row.winning_outcome != market.winning_outcome:
                problems.append(f"market {market_id}: winning outcome chain {market.winning_outcome}, db {row.winning_outcome}")
            for bet in winners:
                if bet.bet_id in claims and claims[bet.bet_id] != bet.payout:
                    problems.append(f"bet {bet.bet_id}: claimed {claims[bet.bet_id]}, payout {bet.payout}")
    return _result("settlement", problems, f"{len(chain.markets)} markets, {len(claims)} claims follow the payout formula")


def _check_reserve(market: ChainMarket, bets: list[ChainBet]) -> list[str]:
    """Check that an open market's escrow equals the worst case the house can lose."""
    total_stake = sum(bet.stake for bet in bets)
    payout_sums = [sum(bet.payout for bet in bets if bet.outcome == outcome) for outcome in range(market.outcome_count)]
    reserve = max(0, max(payout_sums, default=0) - total_stake)
    problems = []
    if market.total_stake != total_stake:
        problems.append(f"market {market.market_id}: totalStake {market.total_stake}, bets sum to {total_stake}")
    if market.reserve != reserve:
        problems.append(f"market {market.market_id}: reserve {market.reserve}, worst case needs {reserve}")
    return problems


def check_completion(chain: ChainState, expected_bets: int, expect_settled: bool) -> InvariantResult:
    """Check that every bet was placed, every market is final and every winner was paid."""
    problems = []
    if len(chain.bets) != expected_bets:
        problems.append(f"{len(chain.bets)} bets on chain, scenario placed {expected_bets}")
    if expect_settled:
        problems += [f"market {m.market_id} is {STATUS_NAMES[m.status]}" for m in chain.markets.values() if m.status not in (3, 4)]
        for bet in chain.bets.values():
            market = chain.markets[bet.market_id]
            due = market.status == 4 or (market.status == 3 and bet.outcome == market.winning_outcome)
            if due and not bet.claimed:
                problems.append(f"bet {bet.bet_id} is due a payout or refund but was not claimed")
    return _result("scenario_completed", problems, f"{expected_bets} bets placed, every market final and every payout claimed")



def check_all(w3: Web3, deployment: Deployment, engine: Engine, *, expected_bets: int, expect_settled: bool) -> list[InvariantResult]:
    chain = read_chain(w3, deployment)
    db = read_db(engine)
    return [
        check_conservation(chain, db),
        check_ledger(db),
        check_exactly_once(chain, db),
        check_bets(chain, db),
        check_settlement(chain, db),
        check_completion(chain, expected_bets, expect_settled),
    ]


def monitored_log_count(w3: Web3, deployment: Deployment) -> int:
    """Count the monitored logs on the chain, to wait until the monitors have caught up."""
    book = contract(w3, "Sportsbook", deployment.sportsbook)
    return sum(1 for name, _log in _book_logs(w3, book, deployment.start_block) if name in MONITORED_EVENTS)


def _book_logs(w3: Web3, book: Any, start_block: int) -> Iterator[tuple[str, Any]]:
    """Yield (event name, raw log) for every Sportsbook log, reading in chunks of blocks."""
    topics = {Web3.to_hex(Web3.keccak(text=_event_signature(abi))): abi["name"] for abi in book.abi if abi["type"] == "event"}
    head = w3.eth.block_number
    for start in range(start_block, head + 1, LOG_CHUNK_BLOCKS):
        end = min(start + LOG_CHUNK_BLOCKS - 1, head)
        for log in w3.eth.get_logs({"address": book.address, "fromBlock": start, "toBlock": end}):
            name = topics.get(Web3.to_hex(log["topics"][0]))
            if name is not None:
                yield name, log
