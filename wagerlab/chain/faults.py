"""Seeded fault injection for the node's JSON-RPC responses (`wagerlab_setFaults`).

For each response the injector draws one number from its own seeded generator. Below
`fail_share`, the response is replaced by JSON-RPC error -32603. Over HTTP that error
comes with status 200, so a client sees the same failure on both transports. Below
`fail_share + delay_share`, the response waits `delay_ms` milliseconds first. Each item
of a batch gets its own draw. The `wagerlab_*` control methods are never faulted, so a
test can always switch faults off.

`duplicate_share` applies to subscription notifications (`newHeads`, `logs`,
`newPendingTransactions`) instead: below it, a notification is sent twice in a row, as a
node or proxy that retries a delivery would. It has a generator of its own, so switching it
on leaves the draws for responses unchanged.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from wagerlab.chain.errors import InvalidParams

logger = logging.getLogger(__name__)

MAX_DELAY_MS: Final = 60_000
FAULT_KEYS: Final = ("delay_ms", "delay_share", "fail_share", "duplicate_share", "seed")


class Fault(Enum):
    NONE = "none"
    DELAY = "delay"
    FAIL = "fail"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class FaultSettings:
    delay_ms: int = 0
    delay_share: float = 0.0
    fail_share: float = 0.0
    duplicate_share: float = 0.0
    seed: int = 0


class FaultInjector:
    """Decides, response by response, whether to delay or fail it."""

    def __init__(self, settings: FaultSettings | None = None) -> None:
        self.settings = settings or FaultSettings()
        self._random = random.Random(self.settings.seed)
        self._duplicate_random = random.Random(self.settings.seed)
        self.counts = {fault: 0 for fault in Fault}

    @property
    def active(self) -> bool:
        return self.settings.delay_share > 0 or self.settings.fail_share > 0

    def configure(self, settings: FaultSettings) -> dict[str, int]:
        """Apply new settings and restart the generator; return the counts under the old ones."""
        counts = {fault.value: count for fault, count in self.counts.items()}
        self.settings = settings
        self._random = random.Random(settings.seed)
        self._duplicate_random = random.Random(settings.seed)
        self.counts = {fault: 0 for fault in Fault}
        logger.info("fault injection set to %s", settings)
        return counts

    def draw(self) -> Fault:
        if not self.active:
            return Fault.NONE
        value = self._random.random()
        if value < self.settings.fail_share:
            fault = Fault.FAIL
        elif value < self.settings.fail_share + self.settings.delay_share:
            fault = Fault.DELAY
        else:
            fault = Fault.NONE
        self.counts[fault] += 1
        return fault

    def duplicate(self) -> bool:
        """Decide whether to send one subscription notification twice."""
        if self.settings.duplicate_share <= 0 or self._duplicate_random.random() >= self.settings.duplicate_share:
            return False
        self.counts[Fault.DUPLICATE] += 1
        return True


def parse_fault_settings(value: Any) -> FaultSettings:
    """Decode the object of `wagerlab_setFaults`; every key is optional and defaults to 0."""
    if not isinstance(value, dict):
        raise InvalidParams("faults", f"expected an object with keys {list(FAULT_KEYS)}, got {value!r}")
    unknown = set(value) - set(FAULT_KEYS)
    if unknown:
        raise InvalidParams("faults", f"unknown keys {sorted(unknown)}, expected some of {list(FAULT_KEYS)}")
    delay_ms = _integer(value.get("delay_ms", 0), "faults.delay_ms", MAX_DELAY_MS)
    seed = _integer(value.get("seed", 0), "faults.seed", 2**63)
    delay_share = _share(value.get("delay_share", 0), "faults.delay_share")
    fail_share = _share(value.get("fail_share", 0), "faults.fail_share")
    duplicate_share = _share(value.get("duplicate_share", 0), "faults.duplicate_share")
    if delay_share + fail_share > 1:
        total = delay_share + fail_share
        raise InvalidParams("faults", f"delay_share + fail_share must be at most 1, got {total}")
    return FaultSettings(
        delay_ms=delay_ms, delay_share=delay_share, fail_share=fail_share, duplicate_share=duplicate_share, seed=seed
    )


def _integer(value: Any, name: str, maximum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise InvalidParams(name, f"expected an integer 0..{maximum}, got {value!r}")
    return value


def _share(value: Any, name: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
        raise InvalidParams(name, f"expected a number from 0 to 1, got {value!r}")
    return float(value)
