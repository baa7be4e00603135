"""One deployment on an in-process eth-tester chain, shared by the contract tests.

The platform is deployed once per session, and each test runs inside an EVM snapshot that
is reverted afterwards, so tests start from the same state without redeploying.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from web3 import EthereumTesterProvider, Web3

from wagerlab.chain.accounts import dev_account, dev_roles
from wagerlab.chain.contracts import contract
from wagerlab.chain.deploy import deploy_platform

from .harness import BETTOR_DEPOSIT, HOUSE_FUNDING, MARKET_ID, MAX_UINT256, Chain


@pytest.fixture(scope="session")
def chain_session() -> Chain:
    w3 = Web3(EthereumTesterProvider())
    roles = dev_roles()
    deployment = deploy_platform(w3, roles, house_funding=HOUSE_FUNDING)
    chain = Chain(
        w3=w3,
        roles=roles,
        deployment=deployment,
        token=contract(w3, "WagerToken", deployment.token),
        book=contract(w3, "Sportsbook", deployment.sportsbook),
        oracle=contract(w3, "ResultOracle", deployment.oracle),
        bettors=(dev_account(8), dev_account(9), dev_account(10)),
    )
    for bettor in chain.bettors:
        chain.send(bettor, chain.token.functions.faucet(BETTOR_DEPOSIT))
        chain.send(bettor, chain.token.functions.approve(deployment.sportsbook, MAX_UINT256))
        chain.send(bettor, chain.book.functions.deposit(BETTOR_DEPOSIT))
    return chain


@pytest.fixture
def chain(chain_session: Chain) -> Iterator[Chain]:
    snapshot = chain_session.w3.testing.snapshot()
    yield chain_session
    chain_session.w3.testing.revert(snapshot)


@pytest.fixture
def market(chain: Chain) -> int:
    """A two-outcome market open for an hour, with the default liability cap."""
    chain.create_market()
    return MARKET_ID
