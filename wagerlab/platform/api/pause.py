"""Whether the Sportsbook is paused, so that the api stops quoting and relaying bets with it."""

from __future__ import annotations

import logging
import time
from typing import Protocol

from web3 import AsyncWeb3

from wagerlab.platform.errors import ConflictError
from wagerlab.platform.nodecalls import read_from_node

logger = logging.getLogger(__name__)

PAUSED_SELECTOR = "0x5c975abb"
"""`paused()`."""
PAUSE_CACHE_SECONDS = 1.0


class PlatformPausedError(ConflictError):
    """The guardian has paused the Sportsbook; no bet is quoted or relayed until it unpauses."""

    code = "platform_paused"


class PauseState(Protocol):
    async def paused(self) -> bool: ...


class ChainPauseState:
    """Reads `paused()` from the Sportsbook, at most once per `PAUSE_CACHE_SECONDS`.

    An unreachable node counts as an error, not as "not paused", so a paused platform
    never takes a bet because the node was slow to answer.
    """

    def __init__(self, w3: AsyncWeb3, sportsbook: str) -> None:
        self.w3 = w3
        self.sportsbook = AsyncWeb3.to_checksum_address(sportsbook)
        self._value = False
        self._read_at = float("-inf")

    async def paused(self) -> bool:
        if time.monotonic() - self._read_at < PAUSE_CACHE_SECONDS:
            return self._value
        result = await read_from_node(
            "paused() of the Sportsbook", lambda: self.w3.eth.call({"to": self.sportsbook, "data": PAUSED_SELECTOR})
        )
        self._value = int.from_bytes(bytes(result), "big") != 0
        self._read_at = time.monotonic()
        return self._value


class NeverPaused:
    """For tests without a node."""

    async def paused(self) -> bool:
        return False


async def reject_if_paused(state: PauseState, action: str) -> None:
    if await state.paused():
        raise PlatformPausedError(f"the platform is paused by its guardian, so {action} is rejected: try again after it unpauses")
