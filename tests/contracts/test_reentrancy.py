"""The Sportsbook's reentrancy guard, against a token that calls back during transfers."""

from __future__ import annotations

from pathlib import Path

import pytest
from web3 import Web3
from web3.contract import Contract

from wagerlab.chain.compiler import compile_directory
from wagerlab.chain.contracts import contract_factory

from .harness import GAS, Chain

SOLIDITY_DIR = Path(__file__).parent / "solidity"


@pytest.fixture(scope="module")
def reentrant_artifact() -> tuple[list[dict[str, object]], str]:
    compiled = compile_directory(SOLIDITY_DIR)["ReentrantToken"]
    return compiled.abi, compiled.bytecode


def _deploy(chain: Chain, abi: list[dict[str, object]], bytecode: str) -> tuple[Contract, Contract]:
    """Deploy the reentrant token and a Sportsbook that uses it."""
    operator = chain.roles.operator
    factory = chain.w3.eth.contract(abi=abi, bytecode=bytecode)
    token_receipt = chain.send(operator, factory.constructor())
    token = chain.w3.eth.contract(address=token_receipt["contractAddress"], abi=abi)
    book_constructor = contract_factory(chain.w3, "Sportsbook").constructor(
        token.address, chain.roles.odds_signer.address, chain.roles.guardian.address
    )
    book_receipt = chain.send(operator, book_constructor, gas=5_000_000)
    book = chain.w3.eth.contract(address=book_receipt["contractAddress"], abi=chain.book.abi)
    return token, book


@pytest.mark.parametrize("entry", ["deposit", "withdraw", "fundHouse", "withdrawHouse"])
def test_reentrant_token_call_reverts(
    chain: Chain, reentrant_artifact: tuple[list[dict[str, object]], str], entry: str
) -> None:
    operator = chain.roles.operator
    token, book = _deploy(chain, *reentrant_artifact)
    chain.send(operator, token.functions.mint(operator.address, 1_000))
    chain.send(operator, book.functions.deposit(500))
    chain.send(operator, book.functions.fundHouse(500))
    callback = book.encode_abi("withdraw", args=[1])
    chain.send(operator, token.functions.arm(book.address, Web3.to_bytes(hexstr=callback)))

    error = chain.mined_revert_of(operator, book.functions[entry](10))

    assert error == "SportsbookReentrantCall()"
    assert book.functions.balanceOf(operator.address).call() == 500
    assert book.functions.houseBalance().call() == 500


def test_unarmed_token_moves_funds(chain: Chain, reentrant_artifact: tuple[list[dict[str, object]], str]) -> None:
    """The same token without a callback works, so the test above fails only on the guard."""
    operator = chain.roles.operator
    token, book = _deploy(chain, *reentrant_artifact)
    chain.send(operator, token.functions.mint(operator.address, 1_000))

    chain.send(operator, book.functions.deposit(500), gas=GAS)
    chain.send(operator, book.functions.withdraw(200), gas=GAS)

    assert token.functions.balanceOf(operator.address).call() == 700
    assert book.functions.balanceOf(operator.address).call() == 300
