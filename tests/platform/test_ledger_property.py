"""Property: whatever sequence of chain events the monitors apply, the ledger balances.

Hypothesis draws deposits, bets, a settlement or void, claims, withdrawals and duplicate
deliveries; the monitors apply them to a fresh database. Every event's legs must sum to
zero, the ledger must agree with the balances, and the balances must equal a plain
Python model of the Sportsbook's book to the smallest unit.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path

from eth_utils import to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from monitor_fixtures import ALICE, BOB, LogFactory, account, make_config, make_database
from wagerlab.odds import ODDS_SCALE, payout
from wagerlab.platform.db import LedgerEntry, Market, MarketStatus, write_session
from wagerlab.platform.monitors import BetsMonitor, DepositsMonitor, SettlementMonitor
from wagerlab.platform.monitors.events import ChainLog

CAROL = to_checksum_address("0x" + "c0" * 20)
BETTORS = (ALICE, BOB, CAROL)
MARKET_ID = 7
OUTCOMES = 3
VOID = 255

bet_strategy = st.tuples(
    st.sampled_from(range(len(BETTORS))),
    st.integers(min_value=0, max_value=OUTCOMES - 1),
    st.integers(min_value=1, max_value=50_000_000),
    st.integers(min_value=ODDS_SCALE + 1, max_value=30 * ODDS_SCALE),
)


@st.composite
def histories(draw: st.DrawFn) -> dict:
    return {
        "deposits": draw(st.lists(st.integers(min_value=1, max_value=100_000_000), min_size=3, max_size=3)),
        "bets": draw(st.lists(bet_strategy, max_size=12)),
        "result": draw(st.sampled_from([0, 1, 2, VOID])),
        "claims": draw(st.lists(st.booleans(), min_size=12, max_size=12)),
        "withdrawals": draw(st.lists(st.integers(min_value=0, max_value=100), min_size=3, max_size=3)),
        "duplicates": draw(st.lists(st.integers(min_value=0, max_value=200), max_size=5)),
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories())
def test_ledger_balances_for_any_history(history: dict) -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = make_database(Path(folder))[1]
        config = make_config(str(engine.url))
        monitors = {"deposits": DepositsMonitor(config, engine), "bets": BetsMonitor(config, engine), "settlement": SettlementMonitor(config, engine)}
        with write_session(engine) as session:
            session.add(Market(market_id=MARKET_ID, name="m", outcomes=["a", "b", "c"], status=MarketStatus.CLOSED, closes_at=0, liability_cap=10**15))

        expected_available, delivered = _apply_history(history, monitors)

        with Session(engine) as session:
            entries = session.exec(select(LedgerEntry)).all()
        per_event: dict[int, int] = defaultdict(int)
        per_account: dict[str, int] = defaultdict(int)
        for entry in entries:
            per_event[entry.event_id] += entry.amount
            per_account[entry.account] += entry.amount

        assert {event: total for event, total in per_event.items() if total} == {}
        for address in BETTORS:
            available, staked = account(engine, address)
            assert available == expected_available[address]
            assert staked == 0
            assert per_account[f"available:{address}"] == available
            assert per_account[f"staked:{address}"] == staked
        assert delivered > 0


def _apply_history(history: dict, monitors: dict) -> tuple[dict[str, int], int]:
    """Deliver the history's logs in block order; return the model's balances and the log count."""
    logs = LogFactory()
    sent: list[tuple[str, dict]] = []
    block = 1

    def deliver(monitor: str, raw: dict) -> None:
        nonlocal block
        monitors[monitor].apply_log(ChainLog.from_rpc(raw))
        sent.append((monitor, raw))
        block += 1

    available = {address: 0 for address in BETTORS}
    for address, amount in zip(BETTORS, history["deposits"], strict=True):
        deliver("deposits", logs.log("Deposited", block, account=address, amount=amount))
        available[address] += amount

    placed = []
    for bet_id, (bettor_index, outcome, stake, odds) in enumerate(history["bets"], start=1):
        bettor = BETTORS[bettor_index]
        stake = min(stake, available[bettor])
        if stake == 0:
            continue
        win = payout(stake, odds)
        deliver("bets", logs.log("BetPlaced", block, betId=bet_id, bettor=bettor, marketId=MARKET_ID, outcome=outcome, stake=stake, odds=odds, payout=win, nonce=bet_id))
        available[bettor] -= stake
        placed.append((bet_id, bettor, outcome, stake, win))
    monitors["bets"].mark_scanned(block + 1000)

    result = history["result"]
    if result == VOID:
        deliver("settlement", logs.log("MarketVoided", block, marketId=MARKET_ID))
    else:
        total = sum(win for _, _, outcome, _, win in placed if outcome == result)
        deliver("settlement", logs.log("MarketSettled", block, marketId=MARKET_ID, winningOutcome=result, totalPayout=total))

    for (bet_id, bettor, outcome, stake, win), claim in zip(placed, history["claims"], strict=False):
        if not claim:
            continue
        if result == VOID:
            deliver("settlement", logs.log("BetRefunded", block, betId=bet_id, bettor=bettor, stake=stake))
            available[bettor] += stake
        elif outcome == result:
            deliver("settlement", logs.log("BetClaimed", block, betId=bet_id, bettor=bettor, payout=win))
            available[bettor] += win

    for address, percent in zip(BETTORS, history["withdrawals"], strict=True):
        amount = available[address] * percent // 100
        if amount:
            deliver("deposits", logs.log("Withdrawn", block, account=address, amount=amount))
            available[address] -= amount

    for index in history["duplicates"]:
        monitor, raw = sent[index % len(sent)]
        monitors[monitor].apply_log(ChainLog.from_rpc(raw))
    return available, len(sent)
