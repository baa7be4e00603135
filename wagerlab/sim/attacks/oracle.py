"""A rogue oracle reporter: one false result, submitted while the market is still open."""

from __future__ import annotations

import asyncio
import logging

from wagerlab.chain.accounts import dev_roles
from wagerlab.chain.contracts import contract
from wagerlab.sim.attacks.base import Attack, AttackContext, AttackError, AttackResult, last_alert_id, wait_for_alerts
from wagerlab.sim.wallet import TransactionReverted, Wallet

logger = logging.getLogger(__name__)

RULE_PREMATURE_RESULT = "premature_result"
MARKET_OPEN = 1


class RogueOracle(Attack):
    """The last reporter votes a false outcome. One vote is below the quorum, so nothing settles.

    The settlement phase then runs with the two honest reporters: the first honest vote
    differs from the rogue one, which the oracle records as a dispute (`ResultDisputed`,
    alert `oracle_dispute`), and the second reaches the quorum for the true outcome.
    """

    kind = "rogue_oracle"
    options = {"market_id": 1, "outcome": 1}

    async def run(self, context: AttackContext, options: dict[str, int], at: str) -> AttackResult:
        world, market_id, outcome = context.world, options["market_id"], options["outcome"]
        rogue = Wallet(dev_roles().reporters[-1], world.rpc, world.chain_id)
        first_alert = await asyncio.to_thread(last_alert_id, context.engine)

        data = world.encode("ResultOracle", "submitResult", market_id, outcome)
        try:
            await rogue.transact("rogue submitResult", world.addresses["oracle"], data)
        except TransactionReverted as err:
            raise AttackError(f"the rogue vote on market {market_id} reverted: {err.reason}") from err
        alerts = await wait_for_alerts(context.engine, first_alert, {RULE_PREMATURE_RESULT})
        oracle = contract(context.w3, "ResultOracle", world.addresses["oracle"])
        book = contract(context.w3, "Sportsbook", world.addresses["sportsbook"])

        checks = {
            "the false vote was counted once": await asyncio.to_thread(oracle.functions.votes(market_id, outcome).call) == 1,
            "no result was finalized without quorum": not await asyncio.to_thread(oracle.functions.finalized(market_id).call),
            "the market is still open": (await asyncio.to_thread(book.functions.getMarket(market_id).call))[0] == MARKET_OPEN,
        }
        rules = [alert.rule for alert in alerts]
        return AttackResult(
            kind=self.kind,
            at=at,
            detected=RULE_PREMATURE_RESULT in rules,
            contained=all(checks.values()),
            detail=f"reporter {rogue.address} voted outcome {outcome} on open market {market_id}",
            alerts=rules,
            checks=checks,
        )
