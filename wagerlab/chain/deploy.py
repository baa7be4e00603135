"""Deploy WagerToken, Sportsbook and ResultOracle and fund the house, over any web3 provider."""

from __future__ import annotations

import logging

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.types import TxReceipt

from wagerlab.chain.accounts import Roles
from wagerlab.chain.contracts import contract, contract_factory, revert_reason, transact
from wagerlab.platform.config import Deployment

logger = logging.getLogger(__name__)

DEFAULT_DEPLOY_GAS = 5_000_000
"""Gas limit of each deployment transaction; the largest, Sportsbook, uses about 2 million."""


class DeploymentError(Exception):
    """A deployment transaction failed; the message names the step and the revert reason."""


def deploy_platform(
    w3: Web3,
    roles: Roles,
    *,
    house_funding: int,
    quorum: int = 2,
    gas: int = DEFAULT_DEPLOY_GAS,
) -> Deployment:
    """Deploy the three contracts, connect them and move `house_funding` into the house.

    The operator deploys every contract (so it is the token's minter, the Sportsbook's
    operator and the oracle's owner), then mints `house_funding` to itself, approves the
    Sportsbook and calls `fundHouse`. `start_block` is the block of the first deployment.
    """
    if house_funding < 0:
        raise ValueError(f"house_funding must not be negative, got {house_funding!r}")
    if not 1 <= quorum <= len(roles.reporters):
        raise ValueError(f"quorum must be between 1 and {len(roles.reporters)} reporters, got {quorum!r}")
    operator = roles.operator

    token, start_block = _deploy(w3, operator, "WagerToken", gas)
    sportsbook, _ = _deploy(
        w3,
        operator,
        "Sportsbook",
        gas,
        token,
        roles.odds_signer.address,
        roles.guardian.address,
    )
    reporters = [reporter.address for reporter in roles.reporters]
    oracle, _ = _deploy(w3, operator, "ResultOracle", gas, sportsbook, quorum, reporters)

    book = contract(w3, "Sportsbook", sportsbook)
    _send(w3, operator, "setOracle", book.functions.setOracle(oracle), gas)
    if house_funding > 0:
        _fund_house(w3, operator, token, sportsbook, house_funding, gas)

    deployment = Deployment(
        chain_id=w3.eth.chain_id,
        token=token,
        sportsbook=sportsbook,
        oracle=oracle,
        start_block=start_block,
    )
    logger.info("deployed %s", deployment)
    return deployment


def _deploy(w3: Web3, sender: LocalAccount, name: str, gas: int, *args: object) -> tuple[ChecksumAddress, int]:
    """Deploy contract `name` and return its address and the block it was mined in."""
    step = f"deploy {name}"
    receipt = _send(w3, sender, step, contract_factory(w3, name).constructor(*args), gas)
    return _created_address(receipt, step), receipt["blockNumber"]


def _fund_house(
    w3: Web3, operator: LocalAccount, token: ChecksumAddress, sportsbook: ChecksumAddress, amount: int, gas: int
) -> None:
    wager_token = contract(w3, "WagerToken", token)
    book = contract(w3, "Sportsbook", sportsbook)
    _send(w3, operator, "mint house funding", wager_token.functions.mint(operator.address, amount), gas)
    _send(w3, operator, "approve house funding", wager_token.functions.approve(sportsbook, amount), gas)
    _send(w3, operator, "fundHouse", book.functions.fundHouse(amount), gas)


def _send(
    w3: Web3, sender: LocalAccount, step: str, call: ContractFunction | ContractConstructor, gas: int
) -> TxReceipt:
    try:
        receipt = transact(w3, sender, call, gas=gas)
    except Exception as err:
        raise DeploymentError(f"step {step!r} was rejected by the node: {err}") from err
    if receipt["status"] != 1:
        reason = revert_reason(w3, receipt) or "no revert data (out of gas?)"
        raise DeploymentError(
            f"step {step!r} reverted in transaction {receipt['transactionHash'].to_0x_hex()} "
            f"(gas used {receipt['gasUsed']} of {gas}): {reason}"
        )
    logger.debug("%s: block %s, gas used %s", step, receipt["blockNumber"], receipt["gasUsed"])
    return receipt


def _created_address(receipt: TxReceipt, step: str) -> ChecksumAddress:
    address = receipt.get("contractAddress")
    if not address:
        raise DeploymentError(f"step {step!r} mined without creating a contract")
    return Web3.to_checksum_address(address)
