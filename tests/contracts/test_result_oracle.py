"""ResultOracle: votes, quorum, disputes, and settlement through the Sportsbook."""

from __future__ import annotations

import pytest
from web3 import Web3

from wagerlab.chain.contracts import contract_factory, revert_reason, transact

from .harness import GAS, MARKET_ID, Chain

VOID_OUTCOME = 255
STATUS_OPEN = 1
STATUS_SETTLED = 3
STATUS_VOIDED = 4


@pytest.fixture
def closed_market(chain: Chain, market: int) -> int:
    chain.place(chain.bettors[0], 1_000, outcome=1, odds=2_000_000)
    chain.send(chain.roles.operator, chain.book.functions.closeMarket(market))
    return market


def _vote(chain: Chain, reporter_index: int, outcome: int, market: int = MARKET_ID) -> dict[str, list[dict[str, object]]]:
    """Submit a vote and return the oracle's and the Sportsbook's events by name."""
    receipt = chain.send(chain.roles.reporters[reporter_index], chain.oracle.functions.submitResult(market, outcome))
    names = ("ResultSubmitted", "ResultDisputed", "ResultFinalized")
    events = {name: chain.events(receipt, chain.oracle, name) for name in names}
    for name in ("MarketSettled", "MarketVoided"):
        events[name] = chain.events(receipt, chain.book, name)
    return events


def test_oracle_views_after_deployment(chain: Chain) -> None:
    oracle = chain.oracle.functions
    assert oracle.quorum().call() == 2
    assert oracle.reporterCount().call() == 3
    assert oracle.owner().call() == chain.roles.operator.address
    assert oracle.sportsbook().call() == chain.deployment.sportsbook
    assert oracle.VOID_OUTCOME().call() == VOID_OUTCOME
    for reporter in chain.roles.reporters:
        assert oracle.isReporter(reporter.address).call() is True
    assert oracle.isReporter(chain.roles.operator.address).call() is False


def test_first_vote_is_recorded(chain: Chain, closed_market: int) -> None:
    reporter = chain.roles.reporters[0]

    events = _vote(chain, 0, 1)

    assert events["ResultSubmitted"] == [{"marketId": closed_market, "reporter": reporter.address, "outcome": 1, "votes": 1}]
    assert events["ResultDisputed"] == []
    assert events["ResultFinalized"] == []
    assert chain.oracle.functions.votes(closed_market, 1).call() == 1
    assert chain.oracle.functions.reportOf(closed_market, reporter.address).call() == 2
    assert chain.oracle.functions.finalized(closed_market).call() is False


def test_quorum_settles_market(chain: Chain, closed_market: int) -> None:
    _vote(chain, 0, 1)

    events = _vote(chain, 1, 1)

    assert events["ResultSubmitted"][0]["votes"] == 2
    assert events["ResultFinalized"] == [{"marketId": closed_market, "outcome": 1}]
    assert events["MarketSettled"] == [{"marketId": closed_market, "winningOutcome": 1, "totalPayout": 2_000}]
    assert chain.oracle.functions.finalized(closed_market).call() is True
    assert chain.oracle.functions.finalOutcome(closed_market).call() == 1
    assert chain.market(closed_market)["status"] == STATUS_SETTLED


def test_dispute_emits_event(chain: Chain, closed_market: int) -> None:
    _vote(chain, 0, 0)

    events = _vote(chain, 1, 1)

    reporter = chain.roles.reporters[1]
    assert events["ResultDisputed"] == [
        {"marketId": closed_market, "reporter": reporter.address, "outcome": 1, "firstOutcome": 0}
    ]
    assert events["ResultFinalized"] == []
    assert chain.market(closed_market)["status"] == 2


def test_dispute_resolved_by_third_vote(chain: Chain, closed_market: int) -> None:
    _vote(chain, 0, 0)
    _vote(chain, 1, 1)

    events = _vote(chain, 2, 1)

    assert events["ResultDisputed"][0]["firstOutcome"] == 0
    assert events["ResultFinalized"] == [{"marketId": closed_market, "outcome": 1}]
    assert events["MarketSettled"][0]["winningOutcome"] == 1


def test_void_votes_void_market(chain: Chain, closed_market: int) -> None:
    _vote(chain, 0, VOID_OUTCOME)

    events = _vote(chain, 1, VOID_OUTCOME)

    assert events["MarketVoided"] == [{"marketId": closed_market}]
    assert chain.market(closed_market)["status"] == STATUS_VOIDED
    assert chain.oracle.functions.reportOf(closed_market, chain.roles.reporters[0].address).call() == 256
    assert chain.oracle.functions.finalOutcome(closed_market).call() == VOID_OUTCOME


def test_void_open_market(chain: Chain, market: int) -> None:
    """Voiding needs no closed market, e.g. when a bout is called off before it starts."""
    _vote(chain, 0, VOID_OUTCOME)
    _vote(chain, 1, VOID_OUTCOME)

    assert chain.market(market)["status"] == STATUS_VOIDED


def test_vote_by_non_reporter_reverts(chain: Chain, closed_market: int) -> None:
    caller = chain.roles.operator
    error = chain.revert_of(caller, chain.oracle.functions.submitResult(closed_market, 0))
    assert error == f"ResultOracleUnauthorized(caller={caller.address})"


def test_second_vote_by_reporter_reverts(chain: Chain, closed_market: int) -> None:
    reporter = chain.roles.reporters[0]
    _vote(chain, 0, 0)

    error = chain.revert_of(reporter, chain.oracle.functions.submitResult(closed_market, 1))

    assert error == f"ResultOracleAlreadyReported(marketId={closed_market}, reporter={reporter.address})"


def test_vote_after_final_reverts(chain: Chain, closed_market: int) -> None:
    _vote(chain, 0, 1)
    _vote(chain, 1, 1)

    error = chain.revert_of(chain.roles.reporters[2], chain.oracle.functions.submitResult(closed_market, 0))

    assert error == f"ResultOracleAlreadyFinalized(marketId={closed_market}, outcome=1)"


def test_quorum_on_open_market_reverts(chain: Chain, market: int) -> None:
    """The deciding vote fails with the Sportsbook's error and can be cast again later."""
    reporter = chain.roles.reporters[1]
    _vote(chain, 0, 1)

    error = chain.mined_revert_of(reporter, chain.oracle.functions.submitResult(market, 1))

    assert error == f"SportsbookMarketNotClosed(marketId={market}, status={STATUS_OPEN})"
    assert chain.oracle.functions.votes(market, 1).call() == 1
    assert chain.oracle.functions.reportOf(market, reporter.address).call() == 0
    chain.send(chain.roles.operator, chain.book.functions.closeMarket(market))
    assert _vote(chain, 1, 1)["ResultFinalized"] == [{"marketId": market, "outcome": 1}]


def test_quorum_on_invalid_outcome_reverts(chain: Chain, closed_market: int) -> None:
    _vote(chain, 0, 5)

    error = chain.revert_of(chain.roles.reporters[1], chain.oracle.functions.submitResult(closed_market, 5))

    assert error == f"SportsbookInvalidOutcome(marketId={closed_market}, outcome=5, outcomeCount=2)"


# ---------------------------------------------------------------- owner functions


def test_add_and_remove_reporter(chain: Chain) -> None:
    owner, newcomer = chain.roles.operator, chain.roles.funder.address

    added = chain.send(owner, chain.oracle.functions.addReporter(newcomer))
    removed = chain.send(owner, chain.oracle.functions.removeReporter(chain.roles.reporters[0].address))

    assert chain.events(added, chain.oracle, "ReporterAdded") == [{"reporter": newcomer}]
    assert chain.events(removed, chain.oracle, "ReporterRemoved") == [{"reporter": chain.roles.reporters[0].address}]
    assert chain.oracle.functions.isReporter(newcomer).call() is True
    assert chain.oracle.functions.isReporter(chain.roles.reporters[0].address).call() is False
    assert chain.oracle.functions.reporterCount().call() == 3


def test_add_existing_reporter_changes_nothing(chain: Chain) -> None:
    receipt = chain.send(chain.roles.operator, chain.oracle.functions.addReporter(chain.roles.reporters[0].address))

    assert chain.events(receipt, chain.oracle, "ReporterAdded") == []
    assert chain.oracle.functions.reporterCount().call() == 3


def test_remove_below_quorum_reverts(chain: Chain) -> None:
    owner = chain.roles.operator
    chain.send(owner, chain.oracle.functions.removeReporter(chain.roles.reporters[0].address))

    error = chain.revert_of(owner, chain.oracle.functions.removeReporter(chain.roles.reporters[1].address))

    assert error == "ResultOracleInvalidQuorum(quorum=2, reporterCount=1)"


def test_set_quorum_emits_event(chain: Chain) -> None:
    receipt = chain.send(chain.roles.operator, chain.oracle.functions.setQuorum(3))

    assert chain.events(receipt, chain.oracle, "QuorumChanged") == [{"quorum": 3}]
    assert chain.oracle.functions.quorum().call() == 3


@pytest.mark.parametrize("quorum", [0, 4])
def test_set_quorum_out_of_range_reverts(chain: Chain, quorum: int) -> None:
    error = chain.revert_of(chain.roles.operator, chain.oracle.functions.setQuorum(quorum))
    assert error == f"ResultOracleInvalidQuorum(quorum={quorum}, reporterCount=3)"


@pytest.mark.parametrize(
    "function, args",
    [("addReporter", ("0x" + "22" * 20,)), ("removeReporter", ("0x" + "22" * 20,)), ("setQuorum", (1,))],
)
def test_owner_functions_reject_others(chain: Chain, function: str, args: tuple[object, ...]) -> None:
    caller = chain.roles.reporters[0]
    args = tuple(Web3.to_checksum_address(arg) if isinstance(arg, str) else arg for arg in args)

    error = chain.revert_of(caller, chain.oracle.functions[function](*args))

    assert error == f"ResultOracleUnauthorized(caller={caller.address})"


def test_constructor_rejects_quorum_above_reporters(chain: Chain) -> None:
    reporters = [reporter.address for reporter in chain.roles.reporters]
    constructor = contract_factory(chain.w3, "ResultOracle").constructor(chain.deployment.sportsbook, 4, reporters)

    receipt = transact(chain.w3, chain.roles.operator, constructor, gas=GAS)

    assert receipt["status"] == 0
    assert revert_reason(chain.w3, receipt) == "ResultOracleInvalidQuorum(quorum=4, reporterCount=3)"


def test_constructor_counts_duplicates_once(chain: Chain) -> None:
    reporter = chain.roles.reporters[0].address
    constructor = contract_factory(chain.w3, "ResultOracle").constructor(chain.deployment.sportsbook, 2, [reporter, reporter])

    receipt = transact(chain.w3, chain.roles.operator, constructor, gas=GAS)

    assert receipt["status"] == 0
    assert revert_reason(chain.w3, receipt) == "ResultOracleInvalidQuorum(quorum=2, reporterCount=1)"
