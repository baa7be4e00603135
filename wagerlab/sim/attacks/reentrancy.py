"""A bettor contract that re-enters `claim`, against the real Sportsbook and a vulnerable variant.

The real Sportsbook credits payouts to book balances without calling the bettor, and
checks the caller and `claimed` first, so the attacker contract's claims revert. The
deliberately vulnerable `VulnerableSportsbook` (contracts/attacks/) pays in tokens and
calls the bettor before marking the bet claimed, so the attacker drains it within one
transaction. The contract monitor must see the same bet claimed several times in that
transaction (a critical `drain_pattern`) and pause through the guardian, after which the
next drain attempt reverts.

NOTE: the attacker owns no bet on the real Sportsbook, because a scenario checks the exact
number of bets placed. Its claims there target a bettor's bet, so they revert as
unauthorized before any payout. tests/contracts covers the real Sportsbook's guard against
a re-entering token.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from wagerlab.chain.accounts import dev_roles
from wagerlab.chain.contracts import contract, contract_factory, fee_fields, transact
from wagerlab.sim.attacks.base import Attack, AttackContext, AttackError, AttackResult, last_alert_id, wait_for_alerts

logger = logging.getLogger(__name__)

RULE_DRAIN = "drain_pattern"
GAS = 2_000_000
ATTACKER_ETHER = 10**17
BOOK_FUNDING = 1_000_000_000
PAYOUT = 10_000_000
PAUSE_TIMEOUT_SECONDS = 30.0


class Reentrancy(Attack):
    """Deploys the vulnerable book and the attacker contract, attacks both books, and checks the pause."""

    kind = "reentrancy"
    options = {"reentries": 5}

    async def run(self, context: AttackContext, options: dict[str, int], at: str) -> AttackResult:
        world = context.world
        first_alert = await asyncio.to_thread(last_alert_id, context.engine)
        lab = await asyncio.to_thread(_Lab.deploy, context.w3, world.addresses)
        watched = await world.http.post(
            f"{world.api_url}/gateway/admin/watch",
            json={"address": lab.vulnerable.address, "contract": "VulnerableSportsbook"},
            headers={"Authorization": f"Bearer {world.admin_token}"},
        )
        if watched.status_code != 201:
            raise AttackError(f"adding the vulnerable book to the monitor returned {watched.status_code}: {watched.text}")

        real_status = await asyncio.to_thread(lab.attack_real, context.w3, world.addresses["sportsbook"], options["reentries"])
        drained = await asyncio.to_thread(lab.drain, 1, options["reentries"])
        alerts = await wait_for_alerts(context.engine, first_alert, {RULE_DRAIN})
        paused = await _wait_until_paused(lab)
        second = await asyncio.to_thread(lab.drain, 2, options["reentries"])
        quote = await world.http.post(
            f"{world.api_url}/api/quotes", json={"market_id": world.scenario.markets[0].market_id, "outcome": 0, "stake": 1}
        )

        checks = {
            "the real Sportsbook reverted the attacker's claims": real_status == 0,
            "the vulnerable book paid the bet more than once": drained > PAYOUT,
            "the guardian paused the vulnerable book": paused,
            "a drain after the pause reverts": second == 0,
            "the platform takes no quote while paused": quote.status_code in (401, 409),
        }
        rules = [alert.rule for alert in alerts]
        return AttackResult(
            kind=self.kind,
            at=at,
            detected=RULE_DRAIN in rules,
            contained=all(checks.values()),
            detail=f"drained {drained} from the vulnerable book for a payout of {PAYOUT}; the second attempt paid {second}",
            alerts=rules,
            checks=checks,
        )


async def _wait_until_paused(lab: _Lab) -> bool:
    deadline = asyncio.get_running_loop().time() + PAUSE_TIMEOUT_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        if await asyncio.to_thread(lab.vulnerable.functions.paused().call):
            return True
        await asyncio.sleep(0.2)
    return False


class _Lab:
    """The vulnerable book (deployed by the operator, funded with tokens) and the attacker contract."""

    def __init__(self, w3: Web3, vulnerable: Any, attacker_contract: Any, attacker: LocalAccount) -> None:
        self.w3 = w3
        self.vulnerable = vulnerable
        self.attacker_contract = attacker_contract
        self.attacker = attacker

    @classmethod
    def deploy(cls, w3: Web3, addresses: dict[str, str]) -> _Lab:
        roles = dev_roles()
        attacker: LocalAccount = Account.create()
        _check(_send_ether(w3, roles.funder, attacker.address, ATTACKER_ETHER), "funding the attacker")

        receipt = transact(w3, roles.operator, contract_factory(w3, "VulnerableSportsbook").constructor(addresses["token"], roles.guardian.address), gas=GAS)
        vulnerable = contract(w3, "VulnerableSportsbook", _check(receipt, "deploying the vulnerable book")["contractAddress"])
        token = contract(w3, "WagerToken", addresses["token"])
        _check(transact(w3, roles.operator, token.functions.mint(vulnerable.address, BOOK_FUNDING), gas=200_000), "funding the vulnerable book")

        receipt = transact(w3, attacker, contract_factory(w3, "ClaimReentrancyAttacker").constructor(), gas=GAS)
        attacker_contract = contract(w3, "ClaimReentrancyAttacker", _check(receipt, "deploying the attacker")["contractAddress"])
        return cls(w3, vulnerable, attacker_contract, attacker)

    def attack_real(self, w3: Web3, sportsbook: str, reentries: int) -> int:
        """Run the attacker contract against the real Sportsbook's first bet; return the receipt status."""
        receipt = transact(w3, self.attacker, self.attacker_contract.functions.attack(sportsbook, 1, reentries), gas=GAS)
        return int(receipt["status"])

    def drain(self, bet_id: int, reentries: int) -> int:
        """Record a winning bet for the attacker contract and attack it; return the tokens it gained."""
        operator = dev_roles().operator
        record = self.vulnerable.functions.recordWinningBet(bet_id, self.attacker_contract.address, PAYOUT)
        _check(transact(self.w3, operator, record, gas=200_000), "recording the attacker's winning bet")
        token = contract(self.w3, "WagerToken", self.vulnerable.functions.token().call())
        before = token.functions.balanceOf(self.attacker_contract.address).call()
        transact(self.w3, self.attacker, self.attacker_contract.functions.attack(self.vulnerable.address, bet_id, reentries), gas=GAS)
        return token.functions.balanceOf(self.attacker_contract.address).call() - before


def _send_ether(w3: Web3, sender: LocalAccount, to: str, value: int) -> Any:
    tx = {
        "to": to,
        "value": value,
        "gas": 21_000,
        "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
        "chainId": w3.eth.chain_id,
        **fee_fields(w3),
    }
    tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash)


def _check(receipt: Any, step: str) -> Any:
    if receipt["status"] != 1:
        raise AttackError(f"{step} failed: transaction {receipt['transactionHash'].hex()} reverted")
    return receipt
