"""Apply logic of the monitors, driven by synthetic logs against a real SQLite database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from monitor_fixtures import ALICE, BOB, LogFactory, account, cursor_of, event_rows, ledger_balance, ledger_sums, make_config, make_database
from sqlalchemy.engine import Engine
from sqlmodel import Session

from wagerlab.platform.db import Bet, BetStatus, Market, MarketStatus, write_session
from wagerlab.platform.monitors import ApplyOutcome, BetsMonitor, DepositsMonitor, EventHandler, LogMonitor, SettlementMonitor
from wagerlab.platform.monitors import base as base_module
from wagerlab.platform.monitors.errors import DependencyNotReadyError, EventDecodeError, LedgerImbalanceError, UnknownEventError
from wagerlab.platform.monitors.events import ChainLog
from wagerlab.platform.monitors.ledger import HOUSE, Leg, add_to_account, available, staked, wallet

ODDS = 2_500_000


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return make_database(tmp_path)[1]


@pytest.fixture
def monitors(engine: Engine) -> dict[str, LogMonitor]:
    config = make_config(str(engine.url))
    return {
        "deposits": DepositsMonitor(config, engine),
        "bets": BetsMonitor(config, engine),
        "settlement": SettlementMonitor(config, engine),
    }


@pytest.fixture
def logs() -> LogFactory:
    return LogFactory()


def apply(monitor: LogMonitor, raw: dict[str, Any]) -> ApplyOutcome:
    return monitor.apply_log(ChainLog.from_rpc(raw))


def assert_ledger_balanced(engine: Engine) -> None:
    unbalanced = {event_id: total for event_id, total in ledger_sums(engine).items() if total != 0}
    assert unbalanced == {}


def add_market(engine: Engine, market_id: int, status: MarketStatus = MarketStatus.CLOSED) -> None:
    with write_session(engine) as session:
        session.add(Market(market_id=market_id, name=f"market {market_id}", outcomes=["home", "away"], status=status, closes_at=0, liability_cap=10**12))


def place_bet(monitors: dict[str, LogMonitor], logs: LogFactory, block: int, bet_id: int, bettor: str, outcome: int, stake: int, market_id: int = 7) -> None:
    raw = logs.log("BetPlaced", block, betId=bet_id, bettor=bettor, marketId=market_id, outcome=outcome, stake=stake, odds=ODDS, payout=stake * ODDS // 1_000_000, nonce=2**200 + bet_id)
    assert apply(monitors["bets"], raw) is ApplyOutcome.APPLIED


def bet_status(engine: Engine, bet_id: int) -> BetStatus:
    with Session(engine) as session:
        bet = session.get(Bet, bet_id)
        assert bet is not None
        return bet.status


# -- deposits -- #


def test_deposit_credits_available(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory) -> None:
    outcome = apply(monitors["deposits"], logs.log("Deposited", 5, 2, account=ALICE.lower(), amount=3_000_000))

    assert outcome is ApplyOutcome.APPLIED
    assert account(engine, ALICE) == (3_000_000, 0)
    assert ledger_balance(engine, wallet(ALICE)) == -3_000_000
    assert ledger_balance(engine, available(ALICE)) == 3_000_000
    assert cursor_of(engine, "deposits") == (5, 2)
    assert_ledger_balanced(engine)


def test_deposit_event_row_args(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory) -> None:
    raw = logs.log("Deposited", 5, 0, account=ALICE, amount=2**62 + 1)
    apply(monitors["deposits"], raw)

    (row,) = event_rows(engine)
    assert row.event == "Deposited"
    assert row.monitor == "deposits"
    assert row.tx_hash == raw["transactionHash"]
    assert row.block_number == 5
    assert row.args == {"account": ALICE, "amount": 2**62 + 1}


def test_withdrawal_debits_available(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory) -> None:
    apply(monitors["deposits"], logs.log("Deposited", 5, account=ALICE, amount=3_000_000))
    apply(monitors["deposits"], logs.log("Withdrawn", 6, account=ALICE, amount=1_000_000))

    assert account(engine, ALICE) == (2_000_000, 0)
    assert ledger_balance(engine, wallet(ALICE)) == -2_000_000
    assert_ledger_balanced(engine)


def test_duplicate_delivery_ignored(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory) -> None:
    raw = logs.log("Deposited", 5, account=ALICE, amount=1_000_000)

    assert apply(monitors["deposits"], raw) is ApplyOutcome.APPLIED
    assert apply(monitors["deposits"], raw) is ApplyOutcome.SKIPPED
    assert account(engine, ALICE) == (1_000_000, 0)
    assert len(event_rows(engine)) == 1
    assert monitors["deposits"].health.skipped == 1


def test_duplicate_after_cursor_rewind_ignored(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory) -> None:
    raw = logs.log("Deposited", 5, account=ALICE, amount=1_000_000)
    apply(monitors["deposits"], raw)
    with write_session(engine) as session:
        base_module.cursor.write_position(session, "deposits", (1, -1))

    assert apply(monitors["deposits"], raw) is ApplyOutcome.DUPLICATE
    assert account(engine, ALICE) == (1_000_000, 0)
    assert monitors["deposits"].health.duplicates == 1


def test_older_log_after_cursor_skipped(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory) -> None:
    apply(monitors["deposits"], logs.log("Deposited", 9, 1, account=ALICE, amount=1_000_000))

    same_block_earlier = logs.log("Deposited", 9, 0, account=BOB, amount=5)
    earlier_block = logs.log("Deposited", 8, 3, account=BOB, amount=7)
    assert apply(monitors["deposits"], same_block_earlier) is ApplyOutcome.SKIPPED
    assert apply(monitors["deposits"], earlier_block) is ApplyOutcome.SKIPPED
    assert account(engine, BOB) == (0, 0)
    assert cursor_of(engine, "deposits") == (9, 1)


def test_log_before_start_block_skipped(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory) -> None:
    assert apply(monitors["deposits"], logs.log("Deposited", 0, account=ALICE, amount=1)) is ApplyOutcome.SKIPPED
    assert account(engine, ALICE) == (0, 0)


def test_removed_log_reversed(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory) -> None:
    first = logs.log("Deposited", 5, account=ALICE, amount=1_000_000)
    second = logs.log("Deposited", 6, account=ALICE, amount=4_000_000)
    apply(monitors["deposits"], first)
    apply(monitors["deposits"], second)

    outcome = apply(monitors["deposits"], {**second, "removed": True})

    assert outcome is ApplyOutcome.REVERSED
    assert account(engine, ALICE) == (1_000_000, 0)
    assert [row.block_number for row in event_rows(engine)] == [5]
    assert ledger_balance(engine, available(ALICE)) == 1_000_000
    assert cursor_of(engine, "deposits") == (6, -1)
    assert monitors["deposits"].health.events_reversed == 1


def test_removed_log_applies_again(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory) -> None:
    raw = logs.log("Deposited", 6, account=ALICE, amount=4_000_000)
    apply(monitors["deposits"], raw)
    apply(monitors["deposits"], {**raw, "removed": True})

    assert apply(monitors["deposits"], raw) is ApplyOutcome.APPLIED
    assert account(engine, ALICE) == (4_000_000, 0)


def test_removed_unapplied_log_ignored(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory) -> None:
    raw = logs.log("Deposited", 6, account=ALICE, amount=4_000_000, removed=True)

    assert apply(monitors["deposits"], raw) is ApplyOutcome.IGNORED
    assert account(engine, ALICE) == (0, 0)
    assert cursor_of(engine, "deposits") is None


# -- bets -- #


def test_bet_placed_moves_stake(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory) -> None:
    apply(monitors["deposits"], logs.log("Deposited", 3, account=ALICE, amount=10_000_000))
    place_bet(monitors, logs, 4, bet_id=1, bettor=ALICE, outcome=1, stake=2_000_000)

    assert account(engine, ALICE) == (8_000_000, 2_000_000)
    with Session(engine) as session:
        bet = session.get(Bet, 1)
    assert bet is not None
    assert (bet.bettor, bet.market_id, bet.outcome, bet.stake) == (ALICE, 7, 1, 2_000_000)
    assert (bet.odds, bet.payout, bet.status) == (ODDS, 5_000_000, BetStatus.OPEN)
    assert bet.nonce == str(2**200 + 1)
    assert bet.block_number == 4
    assert ledger_balance(engine, staked(ALICE)) == 2_000_000
    assert_ledger_balanced(engine)


def test_bet_placed_reversed(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory) -> None:
    raw = logs.log("BetPlaced", 4, betId=1, bettor=ALICE, marketId=7, outcome=1, stake=5, odds=ODDS, payout=12, nonce=1)
    apply(monitors["bets"], raw)
    apply(monitors["bets"], {**raw, "removed": True})

    assert account(engine, ALICE) == (0, 0)
    with Session(engine) as session:
        assert session.get(Bet, 1) is None


# -- settlement -- #


@pytest.fixture
def two_bets(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory) -> None:
    """Market 7 (closed) with Alice's bet 1 on outcome 0 and Bob's bet 2 on outcome 1."""
    add_market(engine, 7)
    apply(monitors["deposits"], logs.log("Deposited", 2, account=ALICE, amount=10_000_000))
    apply(monitors["deposits"], logs.log("Deposited", 2, 1, account=BOB, amount=10_000_000))
    place_bet(monitors, logs, 3, bet_id=1, bettor=ALICE, outcome=0, stake=2_000_000)
    place_bet(monitors, logs, 4, bet_id=2, bettor=BOB, outcome=1, stake=3_000_000)
    monitors["bets"].mark_scanned(20)


def test_settlement_waits_for_bets(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory, two_bets: None) -> None:
    raw = logs.log("MarketSettled", 21, marketId=7, winningOutcome=0, totalPayout=5_000_000)

    with pytest.raises(DependencyNotReadyError, match="not yet past block 21"):
        apply(monitors["settlement"], raw)
    assert event_rows(engine)[-1].event == "BetPlaced"
    assert bet_status(engine, 1) is BetStatus.OPEN
    assert cursor_of(engine, "settlement") is None

    monitors["bets"].mark_scanned(21)
    assert apply(monitors["settlement"], raw) is ApplyOutcome.APPLIED


def test_market_settled_marks_bets(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory, two_bets: None) -> None:
    apply(monitors["settlement"], logs.log("MarketSettled", 10, marketId=7, winningOutcome=0, totalPayout=5_000_000))

    assert bet_status(engine, 1) is BetStatus.WON
    assert bet_status(engine, 2) is BetStatus.LOST
    assert account(engine, ALICE) == (8_000_000, 0)
    assert account(engine, BOB) == (7_000_000, 0)
    assert ledger_balance(engine, HOUSE) == 5_000_000
    with Session(engine) as session:
        market = session.get(Market, 7)
    assert market is not None
    assert (market.status, market.winning_outcome, market.total_payout) == (MarketStatus.SETTLED, 0, 5_000_000)
    assert_ledger_balanced(engine)


def test_bet_claimed_credits_payout(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory, two_bets: None) -> None:
    apply(monitors["settlement"], logs.log("MarketSettled", 10, marketId=7, winningOutcome=0, totalPayout=5_000_000))
    apply(monitors["settlement"], logs.log("BetClaimed", 11, betId=1, bettor=ALICE, payout=5_000_000))

    assert bet_status(engine, 1) is BetStatus.CLAIMED
    assert account(engine, ALICE) == (13_000_000, 0)
    assert ledger_balance(engine, HOUSE) == 0
    assert_ledger_balanced(engine)


def test_claim_of_unknown_bet_waits(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory, two_bets: None) -> None:
    with pytest.raises(DependencyNotReadyError, match="bet 99"):
        apply(monitors["settlement"], logs.log("BetClaimed", 11, betId=99, bettor=ALICE, payout=1))
    assert account(engine, ALICE) == (8_000_000, 2_000_000)


def test_market_voided_then_refunds(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory, two_bets: None) -> None:
    apply(monitors["settlement"], logs.log("MarketVoided", 10, marketId=7))

    assert (bet_status(engine, 1), bet_status(engine, 2)) == (BetStatus.VOIDED, BetStatus.VOIDED)
    assert account(engine, BOB) == (7_000_000, 0)

    apply(monitors["settlement"], logs.log("BetRefunded", 11, betId=2, bettor=BOB, stake=3_000_000))
    assert bet_status(engine, 2) is BetStatus.REFUNDED
    assert account(engine, BOB) == (10_000_000, 0)
    assert ledger_balance(engine, HOUSE) == 2_000_000
    assert_ledger_balanced(engine)


def test_settlement_reversed(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory, two_bets: None) -> None:
    closed = logs.log("MarketClosed", 9, marketId=7, closedAt=1_700_000_000)
    settled = logs.log("MarketSettled", 10, marketId=7, winningOutcome=0, totalPayout=5_000_000)
    apply(monitors["settlement"], closed)
    apply(monitors["settlement"], settled)

    apply(monitors["settlement"], {**settled, "removed": True})

    assert (bet_status(engine, 1), bet_status(engine, 2)) == (BetStatus.OPEN, BetStatus.OPEN)
    assert account(engine, ALICE) == (8_000_000, 2_000_000)
    assert ledger_balance(engine, HOUSE) == 0
    with Session(engine) as session:
        market = session.get(Market, 7)
    assert market is not None
    assert (market.status, market.winning_outcome) == (MarketStatus.CLOSED, None)


def test_market_closed_updates_status(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory) -> None:
    add_market(engine, 8, MarketStatus.OPEN)
    monitors["bets"].mark_scanned(10)
    apply(monitors["settlement"], logs.log("MarketClosed", 5, marketId=8, closedAt=1_700_000_000))

    with Session(engine) as session:
        market = session.get(Market, 8)
    assert market is not None
    assert market.status is MarketStatus.CLOSED


def test_settlement_without_market_row(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory, two_bets: None) -> None:
    with write_session(engine) as session:
        market = session.get(Market, 7)
        session.delete(market)

    apply(monitors["settlement"], logs.log("MarketSettled", 10, marketId=7, winningOutcome=1, totalPayout=7_500_000))

    assert (bet_status(engine, 1), bet_status(engine, 2)) == (BetStatus.LOST, BetStatus.WON)


# -- atomicity and bad input -- #


def test_crash_before_cursor_writes_nothing(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_args: object) -> None:
        raise RuntimeError("simulated crash after the effects")

    monkeypatch.setattr(base_module.cursor, "write_position", fail)
    with pytest.raises(RuntimeError, match="simulated crash"):
        apply(monitors["deposits"], logs.log("Deposited", 5, account=ALICE, amount=1_000_000))

    assert account(engine, ALICE) == (0, 0)
    assert event_rows(engine) == []
    assert ledger_sums(engine) == {}
    assert cursor_of(engine, "deposits") is None


class UnbalancedMonitor(LogMonitor):
    name = "unbalanced"
    handlers = {"Deposited": EventHandler(apply=lambda _session, event: [Leg(available(event.args["account"]), 1)], reverse=lambda _s, _e: None)}


def test_unbalanced_legs_rejected(engine: Engine, logs: LogFactory) -> None:
    monitor = UnbalancedMonitor(make_config(str(engine.url)), engine)

    with pytest.raises(LedgerImbalanceError, match="sum to 1"):
        apply(monitor, logs.log("Deposited", 5, account=ALICE, amount=1))
    assert event_rows(engine) == []
    assert account(engine, ALICE) == (0, 0)


def test_log_of_other_contract_ignored(engine: Engine, monitors: dict[str, LogMonitor]) -> None:
    other = LogFactory(address="0x" + "99" * 20)

    assert apply(monitors["deposits"], other.log("Deposited", 5, account=ALICE, amount=1)) is ApplyOutcome.IGNORED
    assert event_rows(engine) == []


def test_log_of_other_event_rejected(monitors: dict[str, LogMonitor], logs: LogFactory) -> None:
    with pytest.raises(UnknownEventError, match="first topic"):
        apply(monitors["deposits"], logs.log("MarketVoided", 5, marketId=1))


def test_truncated_log_rejected(monitors: dict[str, LogMonitor], logs: LogFactory) -> None:
    raw = logs.log("Deposited", 5, account=ALICE, amount=1)

    with pytest.raises(EventDecodeError, match="topics"):
        apply(monitors["deposits"], {**raw, "topics": raw["topics"][:1]})
    with pytest.raises(EventDecodeError, match="does not decode"):
        apply(monitors["deposits"], {**raw, "data": "0x1234"})
    with pytest.raises(EventDecodeError, match="not a JSON-RPC log"):
        ChainLog.from_rpc({"address": ALICE})


def test_account_upsert_creates_and_adds(engine: Engine) -> None:
    with write_session(engine) as session:
        add_to_account(session, ALICE, available=5)
    with write_session(engine) as session:
        add_to_account(session, ALICE, available=-2, staked=3)

    assert account(engine, ALICE) == (3, 3)


def test_health_reports_lag(engine: Engine, monitors: dict[str, LogMonitor], logs: LogFactory) -> None:
    monitor = monitors["deposits"]
    apply(monitor, logs.log("Deposited", 5, account=ALICE, amount=1))
    monitor.health.head_block = 12

    record = monitor.health.to_json()
    assert (record["cursor_block"], record["head_block"], record["lag_blocks"]) == (5, 12, 7)
    assert record["events_applied"] == 1
    monitor.mark_scanned(12)
    assert monitor.health.lag_blocks == 0
