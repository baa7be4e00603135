"""Sportsbook: settlement, void, claims and refunds, with the oracle replaced by an account."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount

from .harness import BETTOR_DEPOSIT, HOUSE_FUNDING, Chain

STATUS_OPEN = 1
STATUS_CLOSED = 2
STATUS_SETTLED = 3
STATUS_VOIDED = 4


@pytest.fixture
def oracle(chain: Chain) -> LocalAccount:
    return chain.use_eoa_oracle()


@pytest.fixture
def betting(chain: Chain, market: int) -> int:
    """Market 1 with three bets: bet 1 (bettor 0) and bet 3 (bettor 2) on outcome 0, bet 2 on 1.

    Payouts: outcome 0 = 2500 + 1200 = 3700, outcome 1 = 3000; stakes 3600; reserve 100.
    """
    chain.place(chain.bettors[0], 1_000, outcome=0, odds=2_500_000)
    chain.place(chain.bettors[1], 2_000, outcome=1, odds=1_500_000)
    chain.place(chain.bettors[2], 600, outcome=0, odds=2_000_000)
    assert chain.market(market)["reserve"] == 100
    return market


def _settle(chain: Chain, oracle: LocalAccount, market: int, outcome: int) -> dict[str, int]:
    chain.send(chain.roles.operator, chain.book.functions.closeMarket(market))
    receipt = chain.send(oracle, chain.book.functions.settleMarket(market, outcome))
    [event] = chain.events(receipt, chain.book, "MarketSettled")
    return event


def test_settle_returns_rest_to_house(chain: Chain, oracle: LocalAccount, betting: int) -> None:
    event = _settle(chain, oracle, betting, 1)

    assert event == {"marketId": betting, "winningOutcome": 1, "totalPayout": 3_000}
    # House before settlement: funding - reserve 100. It gets stakes 3600 + reserve 100 - 3000.
    assert chain.book.functions.houseBalance().call() == HOUSE_FUNDING - 100 + 700
    market = chain.market(betting)
    assert market["status"] == STATUS_SETTLED
    assert market["winning_outcome"] == 1


def test_settle_worst_case_uses_reserve(chain: Chain, oracle: LocalAccount, betting: int) -> None:
    event = _settle(chain, oracle, betting, 0)

    assert event["totalPayout"] == 3_700
    assert chain.book.functions.houseBalance().call() == HOUSE_FUNDING - 100 + 0


def test_claim_credits_payout(chain: Chain, oracle: LocalAccount, betting: int) -> None:
    winner = chain.bettors[0]
    _settle(chain, oracle, betting, 0)

    receipt = chain.send(winner, chain.book.functions.claim(1))

    assert chain.events(receipt, chain.book, "BetClaimed") == [{"betId": 1, "bettor": winner.address, "payout": 2_500}]
    assert chain.book.functions.balanceOf(winner.address).call() == BETTOR_DEPOSIT - 1_000 + 2_500
    assert chain.book.functions.getBet(1).call()[-1] is True


def test_claim_then_withdraw_pays_tokens(chain: Chain, oracle: LocalAccount, betting: int) -> None:
    winner = chain.bettors[2]
    _settle(chain, oracle, betting, 0)
    chain.send(winner, chain.book.functions.claim(3))

    chain.send(winner, chain.book.functions.withdraw(BETTOR_DEPOSIT - 600 + 1_200))

    assert chain.token.functions.balanceOf(winner.address).call() == BETTOR_DEPOSIT + 600


def test_claim_twice_reverts(chain: Chain, oracle: LocalAccount, betting: int) -> None:
    winner = chain.bettors[0]
    _settle(chain, oracle, betting, 0)
    chain.send(winner, chain.book.functions.claim(1))

    assert chain.mined_revert_of(winner, chain.book.functions.claim(1)) == "SportsbookAlreadyClaimed(betId=1)"


def test_claim_losing_bet_reverts(chain: Chain, oracle: LocalAccount, betting: int) -> None:
    _settle(chain, oracle, betting, 0)
    error = chain.revert_of(chain.bettors[1], chain.book.functions.claim(2))
    assert error == "SportsbookNotWinningBet(betId=2, outcome=1, winningOutcome=0)"


def test_claim_by_other_account_reverts(chain: Chain, oracle: LocalAccount, betting: int) -> None:
    owner, other = chain.bettors[0], chain.bettors[1]
    _settle(chain, oracle, betting, 0)

    error = chain.revert_of(other, chain.book.functions.claim(1))

    assert error == f"SportsbookUnauthorized(caller={other.address}, expected={owner.address})"


@pytest.mark.parametrize("close", [False, True])
def test_claim_before_result_reverts(chain: Chain, betting: int, close: bool) -> None:
    if close:
        chain.send(chain.roles.operator, chain.book.functions.closeMarket(betting))
    status = STATUS_CLOSED if close else STATUS_OPEN

    error = chain.revert_of(chain.bettors[0], chain.book.functions.claim(1))

    assert error == f"SportsbookMarketNotFinal(marketId={betting}, status={status})"


def test_claim_unknown_bet_reverts(chain: Chain) -> None:
    assert chain.revert_of(chain.bettors[0], chain.book.functions.claim(9)) == "SportsbookBetNotFound(betId=9)"


def test_escrow_covers_all_claims(chain: Chain, oracle: LocalAccount, betting: int) -> None:
    """After every winner claims, the token balance equals book balances plus the house."""
    _settle(chain, oracle, betting, 0)
    chain.send(chain.bettors[0], chain.book.functions.claim(1))
    chain.send(chain.bettors[2], chain.book.functions.claim(3))

    book_balances = sum(chain.book.functions.balanceOf(b.address).call() for b in chain.bettors)
    house = chain.book.functions.houseBalance().call()
    held = chain.token.functions.balanceOf(chain.deployment.sportsbook).call()
    assert held == book_balances + house
    assert book_balances == 3 * BETTOR_DEPOSIT - 3_600 + 3_700


# ---------------------------------------------------------------- settle rules


def test_settle_by_other_account_reverts(chain: Chain, betting: int) -> None:
    caller = chain.roles.operator
    chain.send(caller, chain.book.functions.closeMarket(betting))

    error = chain.revert_of(caller, chain.book.functions.settleMarket(betting, 0))

    assert error == f"SportsbookUnauthorized(caller={caller.address}, expected={chain.deployment.oracle})"


def test_settle_open_market_reverts(chain: Chain, oracle: LocalAccount, betting: int) -> None:
    error = chain.revert_of(oracle, chain.book.functions.settleMarket(betting, 0))
    assert error == f"SportsbookMarketNotClosed(marketId={betting}, status={STATUS_OPEN})"


def test_settle_after_closing_time(chain: Chain, oracle: LocalAccount, betting: int) -> None:
    """An open market whose closing time has passed takes no bets, so it can be settled."""
    chain.w3.testing.timeTravel(chain.market(betting)["closes_at"])

    chain.send(oracle, chain.book.functions.settleMarket(betting, 1))

    assert chain.market(betting)["status"] == STATUS_SETTLED


def test_settle_twice_reverts(chain: Chain, oracle: LocalAccount, betting: int) -> None:
    _settle(chain, oracle, betting, 0)
    error = chain.revert_of(oracle, chain.book.functions.settleMarket(betting, 1))
    assert error == f"SportsbookMarketNotClosed(marketId={betting}, status={STATUS_SETTLED})"


def test_settle_invalid_outcome_reverts(chain: Chain, oracle: LocalAccount, betting: int) -> None:
    chain.send(chain.roles.operator, chain.book.functions.closeMarket(betting))
    error = chain.revert_of(oracle, chain.book.functions.settleMarket(betting, 2))
    assert error == f"SportsbookInvalidOutcome(marketId={betting}, outcome=2, outcomeCount=2)"


def test_settle_unknown_market_reverts(chain: Chain, oracle: LocalAccount) -> None:
    error = chain.revert_of(oracle, chain.book.functions.settleMarket(5, 0))
    assert error == "SportsbookMarketNotFound(marketId=5)"


def test_settle_market_without_bets(chain: Chain, oracle: LocalAccount, market: int) -> None:
    event = _settle(chain, oracle, market, 1)

    assert event["totalPayout"] == 0
    assert chain.book.functions.houseBalance().call() == HOUSE_FUNDING


# ---------------------------------------------------------------- void


@pytest.mark.parametrize("close", [False, True])
def test_void_returns_reserve(chain: Chain, oracle: LocalAccount, betting: int, close: bool) -> None:
    if close:
        chain.send(chain.roles.operator, chain.book.functions.closeMarket(betting))

    receipt = chain.send(oracle, chain.book.functions.voidMarket(betting))

    assert chain.events(receipt, chain.book, "MarketVoided") == [{"marketId": betting}]
    assert chain.market(betting)["status"] == STATUS_VOIDED
    assert chain.book.functions.houseBalance().call() == HOUSE_FUNDING


def test_void_refunds_every_bet(chain: Chain, oracle: LocalAccount, betting: int) -> None:
    chain.send(oracle, chain.book.functions.voidMarket(betting))

    for bet_id, (bettor, stake) in enumerate(zip(chain.bettors, (1_000, 2_000, 600)), start=1):
        receipt = chain.send(bettor, chain.book.functions.claim(bet_id))
        assert chain.events(receipt, chain.book, "BetRefunded") == [
            {"betId": bet_id, "bettor": bettor.address, "stake": stake}
        ]
        assert chain.book.functions.balanceOf(bettor.address).call() == BETTOR_DEPOSIT

    held = chain.token.functions.balanceOf(chain.deployment.sportsbook).call()
    assert held == HOUSE_FUNDING + 3 * BETTOR_DEPOSIT


def test_refund_twice_reverts(chain: Chain, oracle: LocalAccount, betting: int) -> None:
    chain.send(oracle, chain.book.functions.voidMarket(betting))
    chain.send(chain.bettors[1], chain.book.functions.claim(2))

    assert chain.revert_of(chain.bettors[1], chain.book.functions.claim(2)) == "SportsbookAlreadyClaimed(betId=2)"


def test_void_settled_market_reverts(chain: Chain, oracle: LocalAccount, betting: int) -> None:
    _settle(chain, oracle, betting, 0)
    error = chain.revert_of(oracle, chain.book.functions.voidMarket(betting))
    assert error == f"SportsbookMarketNotOpen(marketId={betting}, status={STATUS_SETTLED})"


def test_void_by_other_account_reverts(chain: Chain, betting: int) -> None:
    caller = chain.bettors[0]
    error = chain.revert_of(caller, chain.book.functions.voidMarket(betting))
    assert error == f"SportsbookUnauthorized(caller={caller.address}, expected={chain.deployment.oracle})"


def test_bet_on_voided_market_reverts(chain: Chain, oracle: LocalAccount, betting: int) -> None:
    bettor = chain.bettors[0]
    chain.send(oracle, chain.book.functions.voidMarket(betting))

    error = chain.revert_of(bettor, chain.place_call(chain.quote(bettor), 100))

    assert error == f"SportsbookMarketNotOpen(marketId={betting}, status={STATUS_VOIDED})"
