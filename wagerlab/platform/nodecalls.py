"""Reads from the node that ride out a brief node failure: retried, then reported as 503.

A node under load, or one that restarts, fails some requests with JSON-RPC error -32603
or not at all for a moment. A read the api needs for one request (the latest block, the
Sportsbook's `paused()`) is sent again a few times before the request fails with 503.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from web3.exceptions import Web3RPCError

from wagerlab.platform.errors import NODE_UNREACHABLE_ERRORS, ServiceUnavailableError

logger = logging.getLogger(__name__)

T = TypeVar("T")

NODE_READ_ATTEMPTS = 8
NODE_RETRY_DELAY_SECONDS = 0.05
"""Delay before the second attempt; each later attempt waits one step longer (at most 1.4 s in all)."""
NODE_READ_ERRORS = NODE_UNREACHABLE_ERRORS + (Web3RPCError,)
"""Errors of a read that may succeed when sent again. A revert (`ContractLogicError`) is not among them."""


async def read_from_node(description: str, read: Callable[[], Awaitable[T]]) -> T:
    """Return `read()`, sending it again on a node error; raise ServiceUnavailableError when every attempt failed."""
    for attempt in range(1, NODE_READ_ATTEMPTS + 1):
        try:
            return await read()
        except NODE_READ_ERRORS as err:
            if attempt == NODE_READ_ATTEMPTS:
                logger.error("reading %s from the node failed %d times: %r", description, attempt, err)
                raise ServiceUnavailableError(
                    f"the chain node failed to return {description} {attempt} times (last error: {err}); try again in a few seconds"
                ) from err
            logger.warning("reading %s from the node failed (attempt %d of %d): %r", description, attempt, NODE_READ_ATTEMPTS, err)
            await asyncio.sleep(NODE_RETRY_DELAY_SECONDS * attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")
