"""The contract's payout equals `wagerlab.odds.payout` to the smallest unit."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wagerlab.odds import ODDS_SCALE, payout

from .harness import BETTOR_DEPOSIT, HOUSE_FUNDING, MARKET_ID, Chain

stakes = st.integers(min_value=1, max_value=BETTOR_DEPOSIT)
odds_values = st.one_of(
    st.integers(min_value=ODDS_SCALE + 1, max_value=ODDS_SCALE + 1_000),
    st.integers(min_value=ODDS_SCALE + 1, max_value=50 * ODDS_SCALE),
)


@pytest.fixture
def wide_market(chain: Chain) -> int:
    """A market whose cap is the whole house, which covers every stake and odds drawn here."""
    assert BETTOR_DEPOSIT * 50 <= HOUSE_FUNDING
    chain.create_market(cap=HOUSE_FUNDING)
    return MARKET_ID


# The market fixture is created once for all examples, and each example reverts its bet.
# Each example sends one transaction (about 25 ms on eth-tester), so the count stays small.
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stake=stakes, odds=odds_values)
def test_payout_matches_python(chain: Chain, wide_market: int, stake: int, odds: int) -> None:
    bettor = chain.bettors[0]
    snapshot = chain.w3.testing.snapshot()
    try:
        receipt = chain.place(bettor, stake, odds=odds, max_stake=stake)
        [event] = chain.events(receipt, chain.book, "BetPlaced")
        bet = chain.book.functions.getBet(event["betId"]).call()
    finally:
        chain.w3.testing.revert(snapshot)

    assert event["payout"] == payout(stake, odds)
    assert bet[5] == payout(stake, odds)
