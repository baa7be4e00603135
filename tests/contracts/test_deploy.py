"""deploy_platform: addresses, wiring, house funding and failures."""

from __future__ import annotations

import pytest
from web3 import EthereumTesterProvider, Web3

from wagerlab.chain.accounts import dev_roles
from wagerlab.chain.contracts import contract
from wagerlab.chain.deploy import DeploymentError, deploy_platform

from .harness import HOUSE_FUNDING, Chain


def test_deployment_wires_contracts(chain: Chain) -> None:
    deployment = chain.deployment
    assert deployment.chain_id == chain.w3.eth.chain_id
    assert deployment.start_block == 1
    assert chain.book.functions.token().call() == deployment.token
    assert chain.book.functions.oracle().call() == deployment.oracle
    assert chain.oracle.functions.sportsbook().call() == deployment.sportsbook
    assert chain.book.functions.houseBalance().call() == HOUSE_FUNDING


def test_deploy_without_house_funding() -> None:
    w3 = Web3(EthereumTesterProvider())

    deployment = deploy_platform(w3, dev_roles(), house_funding=0, quorum=3)

    assert contract(w3, "Sportsbook", deployment.sportsbook).functions.houseBalance().call() == 0
    assert contract(w3, "ResultOracle", deployment.oracle).functions.quorum().call() == 3


def test_deploy_out_of_gas_names_step() -> None:
    w3 = Web3(EthereumTesterProvider())

    with pytest.raises(DeploymentError, match=r"step 'deploy WagerToken' reverted .*gas used \d+ of 100000"):
        deploy_platform(w3, dev_roles(), house_funding=0, gas=100_000)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"house_funding": -1}, "house_funding must not be negative, got -1"),
        ({"house_funding": 0, "quorum": 0}, "quorum must be between 1 and 3 reporters, got 0"),
        ({"house_funding": 0, "quorum": 4}, "quorum must be between 1 and 3 reporters, got 4"),
    ],
)
def test_deploy_rejects_bad_arguments(kwargs: dict[str, int], message: str) -> None:
    w3 = Web3(EthereumTesterProvider())
    with pytest.raises(ValueError, match=message):
        deploy_platform(w3, dev_roles(), **kwargs)
