"""Reconciliation against the real chain node and contracts, with the database edited behind the monitors' backs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from monitor_fixtures import account, ledger_balance
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from test_monitors_node import Chain, MonitorsThread, chain, platform_config, send, wait_for  # noqa: F401  (chain is a fixture)

from wagerlab.chain.accounts import dev_roles
from wagerlab.chain.contracts import Quote, contract, sign_quote
from wagerlab.platform.config import PlatformConfig
from wagerlab.platform.db import Account, Alert, Bet, BetStatus, Correction, LedgerEntry, Market, MarketStatus, MonitorCursor, write_session
from wagerlab.platform.monitors.ledger import Leg, write_legs
from wagerlab.platform.reconcile import (
    RECONCILIATION,
    ReconcileNotReadyError,
    apply_corrections,
    finished_block,
    plan_corrections,
    read_chain_view,
    read_database,
    reconcile,
    reconcile_once,
    run_reconciler,
)
from wagerlab.sim.scenario import load_scenario
from wagerlab.sim.invariants import check_bets, check_conservation, check_ledger, check_settlement, read_chain, read_db

MARKET = 7


def run_monitors_to_head(chain: Chain, config: PlatformConfig, engine: Engine) -> None:
    """Run the monitors until each has finished the head block, then stop them."""
    monitors = MonitorsThread(config, engine).start()
    head = chain.w3.eth.block_number
    wait_for(lambda: common_block(engine) == head, f"every monitor to finish block {head}")
    monitors.stop()


def common_block(engine: Engine) -> int | None:
    with Session(engine) as session:
        try:
            return finished_block(session)
        except ReconcileNotReadyError:
            return None


def settle_market(chain: Chain, engine: Engine) -> None:
    """Create market 7, place Alice's winning bet 1 and Bob's losing bet 2, settle it and let Alice claim."""
    alice, bob = chain.bettors
    roles = dev_roles()
    w3 = chain.w3
    book = contract(w3, "Sportsbook", chain.deployment.sportsbook)
    oracle = contract(w3, "ResultOracle", chain.deployment.oracle)
    now = int(w3.eth.get_block("latest")["timestamp"])
    with write_session(engine) as session:
        session.add(Market(market_id=MARKET, name="final", outcomes=["home", "away"], closes_at=now + 3600, liability_cap=10**12))
    send(w3, roles.operator, book.functions.createMarket(MARKET, 2, now + 3600, 10**12))
    chain.deposit(alice, 10_000_000)
    chain.deposit(bob, 10_000_000)
    for nonce, (bettor, outcome, stake, odds) in enumerate([(alice, 0, 2_000_000, 2_500_000), (bob, 1, 3_000_000, 1_800_000)], start=1):
        quote = Quote(bettor=bettor.address, market_id=MARKET, outcome=outcome, odds=odds, max_stake=stake, expiry=now + 3600, nonce=nonce)
        signature = sign_quote(roles.odds_signer, chain.deployment.chain_id, chain.deployment.sportsbook, quote)
        send(w3, bettor, book.functions.placeBet(quote.as_tuple(), stake, signature))
    send(w3, roles.operator, book.functions.closeMarket(MARKET))
    for reporter in roles.reporters[:2]:
        send(w3, reporter, oracle.functions.submitResult(MARKET, 0))
    send(w3, alice, book.functions.claim(1))


def double_credit(engine: Engine, address: str, amount: int) -> None:
    """Credit `amount` a second time with balanced legs, as a monitor that applied one deposit twice would."""
    with write_session(engine) as session:
        event_id = session.exec(select(LedgerEntry.event_id).where(LedgerEntry.account == f"available:{address}")).first()
        write_legs(session, event_id, [Leg(f"wallet:{address}", -amount), Leg(f"available:{address}", amount)])


def corrections(engine: Engine) -> list[Correction]:
    with Session(engine) as session:
        return list(session.exec(select(Correction).order_by(Correction.id)).all())


def invariant_verdicts(chain: Chain, engine: Engine) -> dict[str, bool]:
    chain_state = read_chain(chain.w3, chain.deployment)
    db = read_db(engine)
    results = [check_conservation(chain_state, db), check_ledger(db), check_bets(chain_state, db), check_settlement(chain_state, db)]
    return {result.name: result.ok for result in results}


@pytest.fixture
def deposited(chain: Chain, tmp_path: Path) -> tuple[PlatformConfig, Engine]:
    """Alice and Bob deposited, and every monitor finished the head block."""
    config, engine = platform_config(chain, tmp_path, reconcile_interval_seconds=0)
    alice, bob = chain.bettors
    chain.deposit(alice, 1_000_000)
    chain.deposit(bob, 2_000_000)
    run_monitors_to_head(chain, config, engine)
    return config, engine


@pytest.fixture
def settled(chain: Chain, tmp_path: Path) -> tuple[PlatformConfig, Engine]:
    """Market 7 settled with Alice's bet claimed, and every monitor finished the head block."""
    config, engine = platform_config(chain, tmp_path, reconcile_interval_seconds=0)
    settle_market(chain, engine)
    run_monitors_to_head(chain, config, engine)
    return config, engine


def test_reconcile_equal_state_corrects_nothing(chain: Chain, settled: tuple[PlatformConfig, Engine]) -> None:
    config, engine = settled

    report = reconcile_once(engine, chain.w3, config)

    assert report.block_number == chain.w3.eth.block_number
    assert report.corrections == []
    assert corrections(engine) == []


def test_reconcile_repairs_double_credit(chain: Chain, deposited: tuple[PlatformConfig, Engine]) -> None:
    config, engine = deposited
    alice = chain.bettors[0]
    double_credit(engine, alice.address, 1_000_000)
    assert invariant_verdicts(chain, engine)["conservation"] is False

    report = reconcile_once(engine, chain.w3, config)

    assert [(row.kind, row.subject, row.before, row.after) for row in report.corrections] == [
        ("available", alice.address, {"available": 2_000_000}, {"available": 1_000_000})
    ]
    assert "balanceOf" in report.corrections[0].reason
    assert account(engine, alice.address) == (1_000_000, 0)
    assert ledger_balance(engine, f"available:{alice.address}") == 1_000_000
    assert ledger_balance(engine, RECONCILIATION) == 1_000_000
    assert invariant_verdicts(chain, engine) == {"conservation": True, "ledger_balanced": True, "bets_match": True, "settlement": True}


def test_reconcile_records_and_alerts(chain: Chain, deposited: tuple[PlatformConfig, Engine]) -> None:
    config, engine = deposited
    bob = chain.bettors[1]
    with write_session(engine) as session:
        session.execute(update(Account).where(Account.address == bob.address).values(staked=5))

    reconcile_once(engine, chain.w3, config)

    (row,) = corrections(engine)
    assert (row.kind, row.before, row.after, row.block_number) == ("staked", {"staked": 5}, {"staked": 0}, chain.w3.eth.block_number)
    with Session(engine) as session:
        alerts = list(session.exec(select(Alert)).all())
    assert [alert.rule for alert in alerts] == ["reconciliation_correction"]
    assert bob.address in alerts[0].detail
    assert "staked" in alerts[0].detail


def test_reconcile_second_round_finds_nothing(chain: Chain, deposited: tuple[PlatformConfig, Engine]) -> None:
    config, engine = deposited
    double_credit(engine, chain.bettors[0].address, 1_000_000)

    first = reconcile_once(engine, chain.w3, config)
    second = reconcile_once(engine, chain.w3, config)

    assert len(first.corrections) == 1
    assert second.corrections == []


def test_reconcile_repairs_bet_stake(chain: Chain, settled: tuple[PlatformConfig, Engine]) -> None:
    config, engine = settled
    with write_session(engine) as session:
        session.execute(update(Bet).where(Bet.bet_id == 2).values(stake=1, payout=7))

    report = reconcile_once(engine, chain.w3, config)

    assert [(row.kind, row.subject, row.before, row.after) for row in report.corrections] == [
        ("bet_fields", "bet 2", {"stake": 1, "payout": 7}, {"stake": 3_000_000, "payout": 5_400_000})
    ]
    assert invariant_verdicts(chain, engine)["bets_match"] is True


def test_reconcile_repairs_bet_status(chain: Chain, settled: tuple[PlatformConfig, Engine]) -> None:
    config, engine = settled
    with write_session(engine) as session:
        session.execute(update(Bet).where(Bet.bet_id == 1).values(status=BetStatus.WON))
        session.execute(update(Bet).where(Bet.bet_id == 2).values(status=BetStatus.OPEN))

    report = reconcile_once(engine, chain.w3, config)

    found = {(row.subject, row.before["status"], row.after["status"]) for row in report.corrections}
    assert found == {("bet 1", "won", "claimed"), ("bet 2", "open", "lost")}


def test_reconcile_repairs_market_result(chain: Chain, settled: tuple[PlatformConfig, Engine]) -> None:
    config, engine = settled
    with write_session(engine) as session:
        session.execute(update(Market).where(Market.market_id == MARKET).values(status=MarketStatus.CLOSED, winning_outcome=None, total_payout=None))

    report = reconcile_once(engine, chain.w3, config)

    (row,) = report.corrections
    assert row.kind == "market_status"
    assert row.after == {"status": "settled", "winning_outcome": 0, "total_payout": 5_000_000}
    assert invariant_verdicts(chain, engine)["settlement"] is True


def test_reconcile_restores_deleted_bet(chain: Chain, settled: tuple[PlatformConfig, Engine]) -> None:
    config, engine = settled
    with Session(engine) as session:
        original = session.get(Bet, 2)
        assert original is not None
        session.expunge(original)
    with write_session(engine) as session:
        bet = session.get(Bet, 2)
        session.delete(bet)

    report = reconcile_once(engine, chain.w3, config)

    assert [row.kind for row in report.corrections] == ["bet_missing"]
    with Session(engine) as session:
        restored = session.get(Bet, 2)
    assert restored is not None
    assert (restored.stake, restored.status, restored.tx_hash, restored.block_number, restored.nonce) == (
        original.stake, BetStatus.LOST, original.tx_hash, original.block_number, original.nonce
    )


def test_reconcile_deletes_bet_not_on_chain(chain: Chain, settled: tuple[PlatformConfig, Engine]) -> None:
    config, engine = settled
    with write_session(engine) as session:
        session.add(Bet(bet_id=99, bettor=chain.bettors[0].address, market_id=MARKET, outcome=0, stake=1, odds=2_000_000, payout=2, nonce="9", tx_hash="0x00", block_number=1))

    report = reconcile_once(engine, chain.w3, config)

    assert [(row.kind, row.subject) for row in report.corrections] == [("bet_extra", "bet 99")]
    with Session(engine) as session:
        assert session.get(Bet, 99) is None


def test_reconcile_waits_for_common_block(chain: Chain, deposited: tuple[PlatformConfig, Engine]) -> None:
    config, engine = deposited
    with write_session(engine) as session:
        cursor = session.get(MonitorCursor, "bets")
        assert cursor is not None
        cursor.block_number -= 1
        session.add(cursor)

    with pytest.raises(ReconcileNotReadyError, match="common block"):
        reconcile_once(engine, chain.w3, config)
    with pytest.raises(ReconcileNotReadyError, match="waited 0.1 s"):
        reconcile(engine, chain.w3, config, timeout=0.1, retry_interval=0.05)


def test_reconcile_rejects_cursor_inside_block(chain: Chain, deposited: tuple[PlatformConfig, Engine]) -> None:
    config, engine = deposited
    with write_session(engine) as session:
        cursor = session.get(MonitorCursor, "deposits")
        assert cursor is not None
        cursor.block_number, cursor.log_index = cursor.block_number - 1, 0
        session.add(cursor)

    with pytest.raises(ReconcileNotReadyError):
        reconcile_once(engine, chain.w3, config)


def test_reconcile_drops_changed_value(chain: Chain, deposited: tuple[PlatformConfig, Engine]) -> None:
    config, engine = deposited
    alice = chain.bettors[0]
    double_credit(engine, alice.address, 1_000_000)
    db = read_database(engine)
    planned = plan_corrections(read_chain_view(chain.w3, config, db.finished_block, db.accounts), db)
    double_credit(engine, alice.address, 5)  # the value moves after the round read it

    report = apply_corrections(engine, db.finished_block, planned)

    assert (report.corrections, report.stale) == ([], 1)
    assert account(engine, alice.address) == (2_000_005, 0)


def test_reconcile_stops_when_monitor_moved(chain: Chain, deposited: tuple[PlatformConfig, Engine]) -> None:
    config, engine = deposited
    double_credit(engine, chain.bettors[0].address, 1_000_000)
    db = read_database(engine)
    planned = plan_corrections(read_chain_view(chain.w3, config, db.finished_block, db.accounts), db)
    with write_session(engine) as session:
        for cursor in session.exec(select(MonitorCursor)).all():
            cursor.block_number += 1
            session.add(cursor)

    report = apply_corrections(engine, db.finished_block, planned)

    assert report.corrections == []
    assert corrections(engine) == []


def test_reconcile_reads_chain_at_finished_block(chain: Chain, deposited: tuple[PlatformConfig, Engine]) -> None:
    config, engine = deposited
    alice = chain.bettors[0]
    chain.deposit(alice, 4_000_000)  # mined after the monitors stopped, so not in the database yet

    report = reconcile_once(engine, chain.w3, config)

    assert report.block_number == chain.w3.eth.block_number - 1
    assert report.corrections == []
    assert account(engine, alice.address) == (1_000_000, 0)


def test_scheduled_reconciler_repairs(chain: Chain, deposited: tuple[PlatformConfig, Engine]) -> None:
    config, engine = deposited
    double_credit(engine, chain.bettors[0].address, 1_000_000)

    async def run_two_rounds() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_reconciler(engine, config, stop, interval=0.05))
        await asyncio.to_thread(wait_for, lambda: len(corrections(engine)) == 1, "the scheduled correction")
        stop.set()
        await task

    asyncio.run(run_two_rounds())

    assert account(engine, chain.bettors[0].address) == (1_000_000, 0)


def test_scheduled_reconciler_in_monitors_process(chain: Chain, tmp_path: Path) -> None:
    config, engine = platform_config(chain, tmp_path, reconcile_interval_seconds=0.1)
    alice = chain.bettors[0]
    chain.deposit(alice, 1_000_000)
    monitors = MonitorsThread(config, engine).start()
    wait_for(lambda: account(engine, alice.address)[0] == 1_000_000, "the deposit")

    double_credit(engine, alice.address, 1_000_000)
    wait_for(lambda: len(corrections(engine)) >= 1, "the scheduled correction")
    monitors.stop()

    assert account(engine, alice.address) == (1_000_000, 0)
    assert len(corrections(engine)) == 1


def test_reconcile_command_prints_corrections(chain: Chain, deposited: tuple[PlatformConfig, Engine], tmp_path: Path) -> None:
    config, engine = deposited
    alice = chain.bettors[0]
    config_path = tmp_path / "platform.json"
    config.dump(config_path)
    double_credit(engine, alice.address, 1_000_000)

    result = subprocess.run(
        [sys.executable, "-m", "wagerlab", "reconcile", "--config", str(config_path), "--timeout", "5"], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["block_number"] == chain.w3.eth.block_number
    assert [(item["kind"], item["subject"]) for item in printed["corrections"]] == [("available", alice.address)]
    assert account(engine, alice.address) == (1_000_000, 0)


def test_reconcile_command_times_out(chain: Chain, tmp_path: Path) -> None:
    config, _engine = platform_config(chain, tmp_path)
    config_path = tmp_path / "platform.json"
    config.dump(config_path)

    result = subprocess.run(
        [sys.executable, "-m", "wagerlab", "reconcile", "--config", str(config_path), "--timeout", "0.2"], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1
    assert "monitors are running" in result.stderr


def test_divergence_scenario_asks_for_reconcile() -> None:
    scenario = load_scenario(Path(__file__).parents[2] / "scenarios" / "faults" / "db_divergence.toml")

    assert scenario.platform.reconcile is True
    assert [fault.kind for fault in scenario.faults] == ["double_credit", "bet_stake_edit"]
