"""Each invariant check holds on a consistent state and fails on the divergence it guards."""

from dataclasses import replace

import pytest

from wagerlab.odds import payout
from wagerlab.platform.db import Account, Bet, BetStatus, ChainEvent, LedgerEntry, Market, MarketStatus
from wagerlab.sim.invariants import (
    ChainBet,
    ChainMarket,
    ChainState,
    DbState,
    check_bets,
    check_completion,
    check_conservation,
    check_exactly_once,
    check_ledger,
    check_settlement,
)

ALICE = "0x00000000000000000000000000000000000A11cE"
BOB = "0x0000000000000000000000000000000000000B0b"
STAKE_A, ODDS_A = 10_000_000, 2_500_000
STAKE_B, ODDS_B = 4_000_000, 1_600_000


def settled_world() -> tuple[ChainState, DbState]:
    """Market 1 settled on outcome 0: Alice won and claimed, Bob lost."""
    bets = {
        1: ChainBet(1, ALICE, 1, 0, STAKE_A, ODDS_A, payout(STAKE_A, ODDS_A), True),
        2: ChainBet(2, BOB, 1, 1, STAKE_B, ODDS_B, payout(STAKE_B, ODDS_B), False),
    }
    alice_balance = 50_000_000 - STAKE_A + payout(STAKE_A, ODDS_A)
    bob_balance = 50_000_000 - STAKE_B
    logs = [
        {"event": "Deposited", "tx_hash": "0x01", "log_index": 0, "args": {"account": ALICE, "amount": 50_000_000}},
        {"event": "Deposited", "tx_hash": "0x02", "log_index": 0, "args": {"account": BOB, "amount": 50_000_000}},
        {"event": "BetPlaced", "tx_hash": "0x03", "log_index": 0, "args": {"betId": 1, "marketId": 1}},
        {"event": "BetPlaced", "tx_hash": "0x04", "log_index": 0, "args": {"betId": 2, "marketId": 1}},
        {"event": "MarketSettled", "tx_hash": "0x05", "log_index": 1, "args": {"marketId": 1, "totalPayout": payout(STAKE_A, ODDS_A)}},
        {"event": "BetClaimed", "tx_hash": "0x06", "log_index": 0, "args": {"betId": 1, "payout": payout(STAKE_A, ODDS_A)}},
    ]
    chain = ChainState(
        logs=logs,
        bets=bets,
        markets={1: ChainMarket(1, 3, 2, 0, STAKE_A + STAKE_B, 0)},
        balances={ALICE: alice_balance, BOB: bob_balance},
        house_balance=1_000_000_000,
    )
    chain.book_token_balance = alice_balance + bob_balance + chain.house_balance

    events = [
        ChainEvent(id=i + 1, chain_id=1, tx_hash=log["tx_hash"], log_index=log["log_index"], block_number=i, block_hash="0x", event=log["event"], monitor="m", args={})
        for i, log in enumerate(logs)
    ]
    ledger = [
        LedgerEntry(event_id=1, account=f"wallet:{ALICE}", amount=-50_000_000),
        LedgerEntry(event_id=1, account=f"available:{ALICE}", amount=50_000_000),
        LedgerEntry(event_id=2, account=f"wallet:{BOB}", amount=-50_000_000),
        LedgerEntry(event_id=2, account=f"available:{BOB}", amount=50_000_000),
        LedgerEntry(event_id=3, account=f"available:{ALICE}", amount=-STAKE_A),
        LedgerEntry(event_id=3, account=f"staked:{ALICE}", amount=STAKE_A),
        LedgerEntry(event_id=4, account=f"available:{BOB}", amount=-STAKE_B),
        LedgerEntry(event_id=4, account=f"staked:{BOB}", amount=STAKE_B),
        LedgerEntry(event_id=5, account=f"staked:{ALICE}", amount=-STAKE_A),
        LedgerEntry(event_id=5, account=f"staked:{BOB}", amount=-STAKE_B),
        LedgerEntry(event_id=5, account="house", amount=STAKE_A + STAKE_B),
        LedgerEntry(event_id=6, account="house", amount=-payout(STAKE_A, ODDS_A)),
        LedgerEntry(event_id=6, account=f"available:{ALICE}", amount=payout(STAKE_A, ODDS_A)),
    ]
    db = DbState(
        accounts={ALICE: Account(address=ALICE, available=alice_balance, staked=0), BOB: Account(address=BOB, available=bob_balance, staked=0)},
        bets={
            1: Bet(bet_id=1, bettor=ALICE, market_id=1, outcome=0, stake=STAKE_A, odds=ODDS_A, payout=payout(STAKE_A, ODDS_A), nonce="1", status=BetStatus.CLAIMED, tx_hash="0x03", block_number=3),
            2: Bet(bet_id=2, bettor=BOB, market_id=1, outcome=1, stake=STAKE_B, odds=ODDS_B, payout=payout(STAKE_B, ODDS_B), nonce="2", status=BetStatus.LOST, tx_hash="0x04", block_number=4),
        },
        markets={1: Market(market_id=1, name="Bout", outcomes=["A", "B"], status=MarketStatus.SETTLED, closes_at=0, liability_cap=10**12, winning_outcome=0)},
        events=events,
        ledger=ledger,
    )
    return chain, db


def test_consistent_world_holds_every_invariant() -> None:
    chain, db = settled_world()
    results = [
        check_conservation(chain, db),
        check_ledger(db),
        check_exactly_once(chain, db),
        check_bets(chain, db),
        check_settlement(chain, db),
        check_completion(chain, expected_bets=2, expect_settled=True),
    ]
    assert [r.name for r in results if not r.ok] == []


def test_conservation_catches_double_credit() -> None:
    chain, db = settled_world()
    db.accounts[ALICE].available += 50_000_000
    result = check_conservation(chain, db)
    assert not result.ok
    assert ALICE in result.detail


def test_conservation_catches_missing_book_tokens() -> None:
    chain, db = settled_world()
    chain.book_token_balance -= 1
    result = check_conservation(chain, db)
    assert not result.ok
    assert "Sportsbook holds" in result.detail


def test_ledger_catches_unbalanced_event() -> None:
    chain, db = settled_world()
    db.ledger.append(LedgerEntry(event_id=1, account=f"available:{ALICE}", amount=7))
    result = check_ledger(db)
    assert not result.ok
    assert "event 1 legs sum to 7" in result.detail


def test_exactly_once_catches_missing_and_duplicate_logs() -> None:
    chain, db = settled_world()
    duplicate = db.events[0].model_copy()
    db.events = db.events[1:] + [duplicate, duplicate]
    missing_chain, missing_db = settled_world()
    missing_db.events = missing_db.events[:-1]

    assert "applied 2 times" in check_exactly_once(chain, db).detail
    assert "missing from the database" in check_exactly_once(missing_chain, missing_db).detail


def test_exactly_once_catches_event_without_log() -> None:
    chain, db = settled_world()
    chain.logs = chain.logs[:-1]
    result = check_exactly_once(chain, db)
    assert not result.ok
    assert "has no log on the chain" in result.detail


@pytest.mark.parametrize("field", ["stake", "odds", "outcome", "market_id"])
def test_bets_catches_field_divergence(field: str) -> None:
    chain, db = settled_world()
    setattr(db.bets[2], field, getattr(db.bets[2], field) + 1)
    result = check_bets(chain, db)
    assert not result.ok
    assert "bet 2" in result.detail


def test_bets_catches_claim_status_divergence() -> None:
    chain, db = settled_world()
    db.bets[1].status = BetStatus.WON
    assert not check_bets(chain, db).ok


def test_settlement_catches_wrong_total_payout() -> None:
    chain, db = settled_world()
    chain.logs[4]["args"]["totalPayout"] += 1
    result = check_settlement(chain, db)
    assert not result.ok
    assert "totalPayout" in result.detail


def test_settlement_catches_payout_off_formula() -> None:
    chain, db = settled_world()
    chain.bets[1] = replace(chain.bets[1], payout=chain.bets[1].payout + 1)
    assert "formula" in check_settlement(chain, db).detail


def test_settlement_checks_open_market_reserve() -> None:
    chain, db = settled_world()
    worst_case = payout(STAKE_A, ODDS_A) - (STAKE_A + STAKE_B)
    chain.markets[1] = ChainMarket(1, 2, 2, 0, STAKE_A + STAKE_B, worst_case)
    db.markets[1].status = MarketStatus.CLOSED
    assert check_settlement(chain, db).ok

    chain.markets[1] = ChainMarket(1, 2, 2, 0, STAKE_A + STAKE_B, worst_case - 1)
    assert "reserve" in check_settlement(chain, db).detail


def test_completion_catches_unclaimed_winner() -> None:
    chain, _ = settled_world()
    chain.bets[1] = replace(chain.bets[1], claimed=False)
    result = check_completion(chain, expected_bets=2, expect_settled=True)
    assert not result.ok
    assert "bet 1" in result.detail


def test_completion_catches_missing_bets() -> None:
    chain, _ = settled_world()
    assert not check_completion(chain, expected_bets=3, expect_settled=False).ok
