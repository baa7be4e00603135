"""Helpers of the contract tests: the deployed platform and ways to send and inspect calls."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.logs import DISCARD
from web3.types import TxReceipt

from wagerlab.chain.accounts import Roles
from wagerlab.chain.contracts import Quote, describe_error, revert_reason, sign_quote, transact
from wagerlab.odds import ONE_TOKEN
from wagerlab.platform.config import Deployment

GAS = 1_000_000
HOUSE_FUNDING = 1_000_000 * ONE_TOKEN
BETTOR_DEPOSIT = 10_000 * ONE_TOKEN
MARKET_ID = 1
MARKET_CAP = 100_000 * ONE_TOKEN
MARKET_DURATION = 3600
MAX_UINT256 = 2**256 - 1

_nonces = itertools.count(1)


@dataclass
class Chain:
    """The deployed platform plus helpers to send transactions and read their results."""

    w3: Web3
    roles: Roles
    deployment: Deployment
    token: Contract
    book: Contract
    oracle: Contract
    bettors: tuple[LocalAccount, ...]

    def send(self, account: LocalAccount, call: ContractFunction, gas: int = GAS) -> TxReceipt:
        """Send `call` from `account` and fail the test if it reverts."""
        receipt = transact(self.w3, account, call, gas=gas)
        assert receipt["status"] == 1, f"transaction reverted: {revert_reason(self.w3, receipt)}"
        return receipt

    def revert_of(self, account: LocalAccount, call: ContractFunction) -> str:
        """Return the decoded error `call` reverts with when `account` calls it."""
        try:
            call.call({"from": account.address})
        except Exception as err:  # noqa: BLE001 - eth-tester raises its own TransactionFailed
            return describe_error(err)
        pytest.fail(f"{call.fn_name} did not revert")

    def mined_revert_of(self, account: LocalAccount, call: ContractFunction) -> str:
        """Send `call`, check it is mined with status 0, and return the error a call now gets.

        A reverted transaction changes no contract state, so calling again on the latest
        block reproduces its error, including errors that depend on the block timestamp.
        """
        receipt = transact(self.w3, account, call, gas=GAS)
        assert receipt["status"] == 0, f"{call.fn_name} did not revert"
        return self.revert_of(account, call)

    def events(self, receipt: TxReceipt, source: Contract, name: str) -> list[dict[str, Any]]:
        return [dict(event["args"]) for event in source.events[name]().process_receipt(receipt, errors=DISCARD)]

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def travel_to(self, timestamp: int) -> None:
        """Make the next block's timestamp `timestamp` and mine it."""
        self.w3.testing.timeTravel(timestamp)
        self.w3.testing.mine()

    def create_market(
        self, market_id: int = MARKET_ID, outcome_count: int = 2, cap: int = MARKET_CAP, duration: int = MARKET_DURATION
    ) -> TxReceipt:
        closes_at = self.now() + duration
        call = self.book.functions.createMarket(market_id, outcome_count, closes_at, cap)
        return self.send(self.roles.operator, call)

    def quote(
        self,
        bettor: LocalAccount,
        *,
        outcome: int = 0,
        odds: int = 2_000_000,
        max_stake: int = BETTOR_DEPOSIT,
        market_id: int = MARKET_ID,
        expiry: int | None = None,
        nonce: int | None = None,
    ) -> Quote:
        return Quote(
            bettor=bettor.address,
            market_id=market_id,
            outcome=outcome,
            odds=odds,
            max_stake=max_stake,
            expiry=expiry if expiry is not None else self.now() + 600,
            nonce=nonce if nonce is not None else next(_nonces),
        )

    def sign(self, quote: Quote, signer: LocalAccount | None = None) -> str:
        account = signer or self.roles.odds_signer
        return sign_quote(account, self.deployment.chain_id, self.deployment.sportsbook, quote)

    def place_call(self, quote: Quote, stake: int, signature: str | None = None) -> ContractFunction:
        return self.book.functions.placeBet(quote.as_tuple(), stake, signature or self.sign(quote))

    def place(self, bettor: LocalAccount, stake: int, **quote_fields: Any) -> TxReceipt:
        """Place a correctly signed bet of `stake` for `bettor`."""
        quote = self.quote(bettor, **quote_fields)
        return self.send(bettor, self.place_call(quote, stake))

    def use_eoa_oracle(self) -> LocalAccount:
        """Name the funder account as oracle, so a test can call settleMarket and voidMarket."""
        oracle = self.roles.funder
        self.send(self.roles.operator, self.book.functions.setOracle(oracle.address))
        return oracle

    def market(self, market_id: int = MARKET_ID) -> dict[str, int]:
        names = ("status", "outcome_count", "closes_at", "liability_cap", "winning_outcome", "total_stake", "reserve")
        return dict(zip(names, self.book.functions.getMarket(market_id).call()))
