"""Node reads of the api: retried on node errors, then reported as 503."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from web3.exceptions import ContractLogicError, Web3RPCError

from wagerlab.platform import nodecalls
from wagerlab.platform.api.pause import ChainPauseState
from wagerlab.platform.errors import ServiceUnavailableError
from wagerlab.platform.nodecalls import NODE_READ_ATTEMPTS, read_from_node
from wagerlab.platform.quotes import ChainClock

SPORTSBOOK = "0x" + "11" * 20


class FlakyEth:
    """An `AsyncWeb3.eth` stand-in whose first `failures` requests fail with -32603."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or Web3RPCError("{'code': -32603, 'message': 'injected fault'}")
        self.requests = 0

    async def _answer(self, result: Any) -> Any:
        self.requests += 1
        if self.requests <= self.failures:
            raise self.error
        return result

    async def get_block(self, block_id: str) -> dict[str, int]:
        return await self._answer({"timestamp": 1_700_000_000})

    async def call(self, tx: dict[str, str]) -> bytes:
        return await self._answer((1).to_bytes(32, "big"))


class FlakyWeb3:
    def __init__(self, eth: FlakyEth) -> None:
        self.eth = eth


@pytest.fixture(autouse=True)
def no_retry_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nodecalls, "NODE_RETRY_DELAY_SECONDS", 0.0)


def test_chain_clock_retries_node_errors() -> None:
    eth = FlakyEth(failures=3)

    now = asyncio.run(ChainClock(FlakyWeb3(eth)).now())  # type: ignore[arg-type]

    assert now == 1_700_000_000
    assert eth.requests == 4


def test_pause_state_retries_node_errors() -> None:
    eth = FlakyEth(failures=2)

    paused = asyncio.run(ChainPauseState(FlakyWeb3(eth), SPORTSBOOK).paused())  # type: ignore[arg-type]

    assert paused is True
    assert eth.requests == 3


def test_chain_clock_failing_node_is_503() -> None:
    eth = FlakyEth(failures=NODE_READ_ATTEMPTS)

    with pytest.raises(ServiceUnavailableError, match="failed to return the latest block for the quote clock 8 times") as caught:
        asyncio.run(ChainClock(FlakyWeb3(eth)).now())  # type: ignore[arg-type]

    assert caught.value.status_code == 503
    assert eth.requests == NODE_READ_ATTEMPTS


def test_read_from_node_does_not_retry_revert() -> None:
    eth = FlakyEth(failures=1, error=ContractLogicError("execution reverted"))

    with pytest.raises(ContractLogicError):
        asyncio.run(read_from_node("paused()", lambda: eth.call({})))

    assert eth.requests == 1
