"""The placeBet workload of bench/bench_node.py: a deployed Sportsbook with an open market
and a bettor whose book balance covers every bet, then signed `placeBet` transactions.

Setup runs through web3 on each chain before any clock starts: deploy WagerToken,
Sportsbook and ResultOracle (`deploy_platform`), create one market, give the bettor ether,
mint it tokens and deposit them. Each bet carries its own EIP-712 quote, signed by the
odds signer as the platform's api does (`wagerlab.platform.quotes`), and an explicit gas
limit, so the timed part is only sending the raw transactions.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract
from web3.providers.base import BaseProvider
from web3.types import RPCEndpoint, RPCResponse

from wagerlab.chain.accounts import Roles, derived_account, dev_account, dev_roles
from wagerlab.chain.contracts import contract, revert_reason, transact
from wagerlab.chain.deploy import deploy_platform
from wagerlab.chain.errors import NodeError
from wagerlab.chain.node import Node
from wagerlab.odds import ODDS_SCALE, ONE_TOKEN
from wagerlab.platform import quotes

logger = logging.getLogger(__name__)

PLACE_BET_GAS = 400_000
"""Gas limit of each timed placeBet. The first bet on the market used 260,820 gas and later
ones 205,000 to 227,000 on eth-tester, and every receipt's status is checked."""
SETUP_GAS = 500_000
MAX_FEE_PER_GAS = 2 * 10**9
PRIORITY_FEE_PER_GAS = 10**9
MARKET_ID = 1
MARKET_OPEN_SECONDS = 30 * 24 * 3600
"""Long enough that the market stays open however many blocks the benchmark mines, because
the node gives every block a timestamp above its parent's."""
ODDS = 2 * ODDS_SCALE
STAKE = ONE_TOKEN
BETTOR_DEPOSIT = 10**9 * STAKE
BETTOR_ETHER = 10**21
HOUSE_FUNDING = 10**6 * ONE_TOKEN


class PlaceBetError(Exception):
    """A setup transaction or a timed placeBet did not succeed; the message names which."""


def bench_roles() -> Roles:
    """Return the dev roles with dev account 7 as the operator.

    The transfer workload sends from dev account 1, the usual operator, and counts its
    nonces from 0 on each chain, so the placeBet setup must not send from that account.
    """
    return dataclasses.replace(dev_roles(), operator=dev_account(7))


class NodeProvider(BaseProvider):
    """A web3 provider that calls `Node.request` in this process, for setting up the direct mode."""

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        try:
            return {"jsonrpc": "2.0", "id": 1, "result": self.node.request(method, list(params))}
        except NodeError as err:
            return {"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": str(err)}}

    def is_connected(self, show_traceback: bool = False) -> bool:
        return True


@dataclass
class PlaceBetChain:
    """One chain prepared for the placeBet workload, and the bettor's next transaction nonce."""

    w3: Web3
    chain_id: int
    book: Contract
    odds_signer: LocalAccount
    bettor: LocalAccount
    expiry: int
    next_nonce: int

    def sign_bets(self, count: int) -> list[str]:
        """Sign `count` placeBet transactions with fresh quotes, alternating the outcome."""
        signed = []
        for index in range(count):
            quote = quotes.new_quote(self.bettor.address, MARKET_ID, index % 2, ODDS, STAKE, self.expiry)
            signature = quotes.sign(self.odds_signer, self.chain_id, self.book.address, quote)
            data = self.book.encode_abi("placeBet", args=[quote.as_tuple(), STAKE, signature])
            tx = {
                "to": self.book.address,
                "data": data,
                "gas": PLACE_BET_GAS,
                "maxFeePerGas": MAX_FEE_PER_GAS,
                "maxPriorityFeePerGas": PRIORITY_FEE_PER_GAS,
                "nonce": self.next_nonce,
                "chainId": self.chain_id,
            }
            signed.append("0x" + self.bettor.sign_transaction(tx).raw_transaction.hex())
            self.next_nonce += 1
        return signed

    def check_receipts(self, raw_transactions: list[str], mode: str) -> None:
        """Raise PlaceBetError unless every transaction was mined with status 1."""
        for raw in raw_transactions:
            tx_hash = keccak(hexstr=raw)
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
            if receipt["status"] != 1:
                reason = revert_reason(self.w3, receipt) or "no revert data (out of gas?)"
                raise PlaceBetError(
                    f"{mode}: placeBet 0x{tx_hash.hex()} reverted (gas used {receipt['gasUsed']} "
                    f"of {PLACE_BET_GAS}): {reason}"
                )


def prepare_chain(w3: Web3) -> PlaceBetChain:
    """Deploy the contracts on `w3`'s chain, open a market and fund a new bettor there."""
    roles = bench_roles()
    operator = roles.operator
    deployment = deploy_platform(w3, roles, house_funding=HOUSE_FUNDING)
    token = contract(w3, "WagerToken", deployment.token)
    book = contract(w3, "Sportsbook", deployment.sportsbook)
    bettor = derived_account(0, "bench-bettor", 0)

    closes_at = w3.eth.get_block("latest")["timestamp"] + MARKET_OPEN_SECONDS
    _send(w3, operator, "createMarket", book.functions.createMarket(MARKET_ID, 2, closes_at, 2**256 - 1))
    _send_ether(w3, operator, bettor.address, BETTOR_ETHER)
    _send(w3, operator, "mint the bettor's tokens", token.functions.mint(bettor.address, BETTOR_DEPOSIT))
    _send(w3, bettor, "approve the deposit", token.functions.approve(book.address, BETTOR_DEPOSIT))
    _send(w3, bettor, "deposit", book.functions.deposit(BETTOR_DEPOSIT))
    logger.info("placeBet workload ready on chain %s: sportsbook %s", w3.eth.chain_id, book.address)

    return PlaceBetChain(
        w3=w3,
        chain_id=w3.eth.chain_id,
        book=book,
        odds_signer=roles.odds_signer,
        bettor=bettor,
        expiry=closes_at,
        next_nonce=w3.eth.get_transaction_count(bettor.address),
    )


def _send(w3: Web3, sender: LocalAccount, step: str, call: Any) -> None:
    receipt = transact(w3, sender, call, gas=SETUP_GAS)
    if receipt["status"] != 1:
        reason = revert_reason(w3, receipt) or "no revert data (out of gas?)"
        raise PlaceBetError(f"setup step {step!r} reverted: {reason}")


def _send_ether(w3: Web3, sender: LocalAccount, to: ChecksumAddress, value: int) -> None:
    tx = {
        "to": to,
        "value": value,
        "gas": 21_000,
        "maxFeePerGas": MAX_FEE_PER_GAS,
        "maxPriorityFeePerGas": PRIORITY_FEE_PER_GAS,
        "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
        "chainId": w3.eth.chain_id,
    }
    tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
    if w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)["status"] != 1:
        raise PlaceBetError(f"setup step 'send the bettor {value} wei' failed in {tx_hash.to_0x_hex()}")
