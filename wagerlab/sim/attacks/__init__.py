"""Attack actors a scenario runs between phases with `[[attacks]]` tables.

Each attack reports whether the platform detected it, which means the expected alert was
stored, and contained it, which its own checks decide. The run's invariants show that
nothing was lost.
"""

from __future__ import annotations

import logging

from wagerlab.sim.attacks.base import Attack, AttackContext, AttackError, AttackOptionsError, AttackResult
from wagerlab.sim.attacks.flood import ApiFlood, XffSpoof
from wagerlab.sim.attacks.logins import BruteForce, CredentialStuffing
from wagerlab.sim.attacks.oracle import RogueOracle
from wagerlab.sim.attacks.quotes import QuoteReplay
from wagerlab.sim.attacks.reentrancy import Reentrancy

logger = logging.getLogger(__name__)

ATTACKS: dict[str, type[Attack]] = {attack.kind: attack for attack in (BruteForce, CredentialStuffing, ApiFlood, XffSpoof, RogueOracle, QuoteReplay, Reentrancy)}


async def run_attack(kind: str, options: dict[str, int], at: str, context: AttackContext) -> AttackResult:
    """Run one attack and return its result; a failure to carry it out counts as not contained."""
    attack = ATTACKS[kind]
    logger.warning("attack %s starts after phase %s", kind, at)
    try:
        result = await attack().run(context, attack.resolve(options), at)
    except AttackError as err:
        logger.error("attack %s could not be carried out: %s", kind, err)
        return AttackResult(kind=kind, at=at, detected=False, contained=False, detail=f"attack failed: {err}")
    logger.warning("attack %s: detected %s, contained %s: %s", kind, result.detected, result.contained, result.checks)
    return result


__all__ = ["ATTACKS", "Attack", "AttackContext", "AttackError", "AttackOptionsError", "AttackResult", "run_attack"]
