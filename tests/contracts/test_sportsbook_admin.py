"""Sportsbook: operator functions, the house balance, markets and pause."""

from __future__ import annotations

import re

import pytest

from .harness import BETTOR_DEPOSIT, HOUSE_FUNDING, MARKET_CAP, MARKET_ID, Chain

STATUS_OPEN = 1
STATUS_CLOSED = 2


def test_views_after_deployment(chain: Chain) -> None:
    book = chain.book.functions
    assert book.token().call() == chain.deployment.token
    assert book.operator().call() == chain.roles.operator.address
    assert book.oddsSigner().call() == chain.roles.odds_signer.address
    assert book.guardian().call() == chain.roles.guardian.address
    assert book.oracle().call() == chain.deployment.oracle
    assert book.paused().call() is False
    assert book.ODDS_SCALE().call() == 1_000_000
    assert book.MAX_OUTCOMES().call() == 8
    assert book.nextBetId().call() == 1
    assert book.houseBalance().call() == HOUSE_FUNDING
    assert chain.token.functions.balanceOf(chain.deployment.sportsbook).call() == HOUSE_FUNDING + 3 * BETTOR_DEPOSIT


def test_set_oracle_emits_event(chain: Chain) -> None:
    new_oracle = chain.roles.funder.address

    receipt = chain.send(chain.roles.operator, chain.book.functions.setOracle(new_oracle))

    assert chain.book.functions.oracle().call() == new_oracle
    assert chain.events(receipt, chain.book, "OracleChanged") == [
        {"previousOracle": chain.deployment.oracle, "newOracle": new_oracle}
    ]


@pytest.mark.parametrize(
    "function, args",
    [
        ("setOracle", ("0x" + "11" * 20,)),
        ("createMarket", (MARKET_ID, 2, 2**40, MARKET_CAP)),
        ("closeMarket", (MARKET_ID,)),
        ("fundHouse", (1,)),
        ("withdrawHouse", (1,)),
    ],
)
def test_operator_functions_reject_others(chain: Chain, function: str, args: tuple[object, ...]) -> None:
    caller = chain.bettors[0]
    args = tuple(chain.w3.to_checksum_address(arg) if isinstance(arg, str) else arg for arg in args)

    error = chain.revert_of(caller, chain.book.functions[function](*args))

    assert error == f"SportsbookUnauthorized(caller={caller.address}, expected={chain.roles.operator.address})"


# ---------------------------------------------------------------- markets


def test_create_market_emits_event(chain: Chain) -> None:
    closes_at = chain.now() + 3600
    call = chain.book.functions.createMarket(7, 3, closes_at, 5_000)

    receipt = chain.send(chain.roles.operator, call)

    assert chain.events(receipt, chain.book, "MarketCreated") == [
        {"marketId": 7, "outcomeCount": 3, "closesAt": closes_at, "liabilityCap": 5_000}
    ]
    assert chain.market(7) == {
        "status": STATUS_OPEN,
        "outcome_count": 3,
        "closes_at": closes_at,
        "liability_cap": 5_000,
        "winning_outcome": 0,
        "total_stake": 0,
        "reserve": 0,
    }


def test_create_market_twice_reverts(chain: Chain, market: int) -> None:
    call = chain.book.functions.createMarket(market, 2, chain.now() + 100, 1)
    assert chain.revert_of(chain.roles.operator, call) == f"SportsbookMarketExists(marketId={market})"


@pytest.mark.parametrize("outcome_count", [0, 1, 9, 255])
def test_create_market_invalid_outcome_count(chain: Chain, outcome_count: int) -> None:
    call = chain.book.functions.createMarket(MARKET_ID, outcome_count, chain.now() + 100, 1)
    error = chain.revert_of(chain.roles.operator, call)
    assert error == f"SportsbookInvalidOutcomeCount(outcomeCount={outcome_count})"


@pytest.mark.parametrize("outcome_count", [2, 8])
def test_create_market_outcome_count_bounds(chain: Chain, outcome_count: int) -> None:
    chain.create_market(outcome_count=outcome_count)
    assert chain.market()["outcome_count"] == outcome_count


def test_create_market_closing_in_past_reverts(chain: Chain) -> None:
    closes_at = chain.now() - 1
    call = chain.book.functions.createMarket(MARKET_ID, 2, closes_at, 1)

    error = chain.revert_of(chain.roles.operator, call)

    match = re.fullmatch(rf"SportsbookInvalidClosingTime\(closesAt={closes_at}, now=(\d+)\)", error)
    assert match is not None, error
    assert int(match.group(1)) >= closes_at


def test_close_market_emits_event(chain: Chain, market: int) -> None:
    receipt = chain.send(chain.roles.operator, chain.book.functions.closeMarket(market))

    block = chain.w3.eth.get_block(receipt["blockNumber"])
    assert chain.events(receipt, chain.book, "MarketClosed") == [{"marketId": market, "closedAt": block["timestamp"]}]
    assert chain.market(market)["status"] == STATUS_CLOSED


def test_close_market_twice_reverts(chain: Chain, market: int) -> None:
    chain.send(chain.roles.operator, chain.book.functions.closeMarket(market))

    error = chain.revert_of(chain.roles.operator, chain.book.functions.closeMarket(market))

    assert error == f"SportsbookMarketNotOpen(marketId={market}, status={STATUS_CLOSED})"


def test_close_unknown_market_reverts(chain: Chain) -> None:
    error = chain.revert_of(chain.roles.operator, chain.book.functions.closeMarket(99))
    assert error == "SportsbookMarketNotFound(marketId=99)"


def test_get_market_unknown_is_none(chain: Chain) -> None:
    assert chain.market(99)["status"] == 0


def test_outcome_payout_rejects_unknown(chain: Chain, market: int) -> None:
    book = chain.book.functions
    assert chain.revert_of(chain.roles.operator, book.outcomePayout(99, 0)) == "SportsbookMarketNotFound(marketId=99)"
    error = chain.revert_of(chain.roles.operator, book.outcomePayout(market, 2))
    assert error == f"SportsbookInvalidOutcome(marketId={market}, outcome=2, outcomeCount=2)"


# ---------------------------------------------------------------- house


def test_fund_house_pulls_tokens(chain: Chain) -> None:
    operator = chain.roles.operator
    chain.send(operator, chain.token.functions.mint(operator.address, 500))
    chain.send(operator, chain.token.functions.approve(chain.deployment.sportsbook, 500))

    receipt = chain.send(operator, chain.book.functions.fundHouse(500))

    assert chain.events(receipt, chain.book, "HouseFunded") == [{"from": operator.address, "amount": 500}]
    assert chain.book.functions.houseBalance().call() == HOUSE_FUNDING + 500
    assert chain.token.functions.balanceOf(operator.address).call() == 0


def test_fund_house_without_allowance_reverts(chain: Chain) -> None:
    operator = chain.roles.operator
    chain.send(operator, chain.token.functions.mint(operator.address, 500))

    error = chain.revert_of(operator, chain.book.functions.fundHouse(500))

    assert error == f"ERC20InsufficientAllowance(spender={chain.deployment.sportsbook}, allowance=0, needed=500)"


@pytest.mark.parametrize("function", ["fundHouse", "withdrawHouse"])
def test_house_zero_amount_reverts(chain: Chain, function: str) -> None:
    error = chain.revert_of(chain.roles.operator, chain.book.functions[function](0))
    assert error == "SportsbookZeroAmount()"


def test_withdraw_house_sends_tokens(chain: Chain) -> None:
    operator = chain.roles.operator

    receipt = chain.send(operator, chain.book.functions.withdrawHouse(700))

    assert chain.events(receipt, chain.book, "HouseWithdrawn") == [{"to": operator.address, "amount": 700}]
    assert chain.book.functions.houseBalance().call() == HOUSE_FUNDING - 700
    assert chain.token.functions.balanceOf(operator.address).call() == 700


def test_withdraw_house_above_balance_reverts(chain: Chain) -> None:
    call = chain.book.functions.withdrawHouse(HOUSE_FUNDING + 1)
    error = chain.revert_of(chain.roles.operator, call)
    assert error == f"SportsbookInsufficientHouseBalance(balance={HOUSE_FUNDING}, needed={HOUSE_FUNDING + 1})"


def test_withdraw_house_cannot_take_reserve(chain: Chain, market: int) -> None:
    chain.place(chain.bettors[0], 1_000, odds=3_000_000)
    free = HOUSE_FUNDING - 2_000

    error = chain.revert_of(chain.roles.operator, chain.book.functions.withdrawHouse(free + 1))

    assert error == f"SportsbookInsufficientHouseBalance(balance={free}, needed={free + 1})"


# ---------------------------------------------------------------- pause


def test_pause_emits_event(chain: Chain) -> None:
    guardian = chain.roles.guardian

    receipt = chain.send(guardian, chain.book.functions.pause())

    assert chain.book.functions.paused().call() is True
    assert chain.events(receipt, chain.book, "Paused") == [{"account": guardian.address}]


def test_unpause_emits_event(chain: Chain) -> None:
    guardian = chain.roles.guardian
    chain.send(guardian, chain.book.functions.pause())

    receipt = chain.send(guardian, chain.book.functions.unpause())

    assert chain.book.functions.paused().call() is False
    assert chain.events(receipt, chain.book, "Unpaused") == [{"account": guardian.address}]


@pytest.mark.parametrize("function", ["pause", "unpause"])
def test_pause_by_other_account_reverts(chain: Chain, function: str) -> None:
    caller = chain.roles.operator
    error = chain.revert_of(caller, chain.book.functions[function]())
    assert error == f"SportsbookUnauthorized(caller={caller.address}, expected={chain.roles.guardian.address})"


def test_pause_twice_reverts(chain: Chain) -> None:
    chain.send(chain.roles.guardian, chain.book.functions.pause())
    assert chain.revert_of(chain.roles.guardian, chain.book.functions.pause()) == "SportsbookEnforcedPause()"


def test_unpause_while_running_reverts(chain: Chain) -> None:
    assert chain.revert_of(chain.roles.guardian, chain.book.functions.unpause()) == "SportsbookExpectedPause()"


def test_pause_stops_bettor_functions(chain: Chain, market: int) -> None:
    bettor = chain.bettors[0]
    chain.place(bettor, 100)
    chain.send(chain.roles.guardian, chain.book.functions.pause())
    quote = chain.quote(bettor)
    calls = {
        "deposit": chain.book.functions.deposit(1),
        "withdraw": chain.book.functions.withdraw(1),
        "placeBet": chain.place_call(quote, 100),
        "claim": chain.book.functions.claim(1),
    }

    for name, call in calls.items():
        assert chain.mined_revert_of(bettor, call) == "SportsbookEnforcedPause()", name


def test_pause_keeps_operator_functions(chain: Chain, market: int) -> None:
    chain.send(chain.roles.guardian, chain.book.functions.pause())

    chain.send(chain.roles.operator, chain.book.functions.closeMarket(market))
    chain.create_market(market_id=2)

    assert chain.market(market)["status"] == STATUS_CLOSED
    assert chain.market(2)["status"] == STATUS_OPEN


def test_unpause_restores_bets(chain: Chain, market: int) -> None:
    bettor = chain.bettors[0]
    chain.send(chain.roles.guardian, chain.book.functions.pause())
    chain.send(chain.roles.guardian, chain.book.functions.unpause())

    chain.place(bettor, 100)

    assert chain.book.functions.nextBetId().call() == 2
