"""The api's client of chainapi: submit transactions and wait for their outcome."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx

from wagerlab.logs import request_id_headers
from wagerlab.platform.errors import (
    ChainError,
    NotFoundError,
    PlatformError,
    ServiceUnavailableError,
    TransactionRevertedError,
    ValidationError,
)

logger = logging.getLogger(__name__)

WAIT_TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 0.05


class ChainapiClient:
    """Calls chainapi over HTTP; an unreachable chainapi becomes a 503 for the api's caller."""

    def __init__(self, http: httpx.AsyncClient, *, wait_timeout: float = WAIT_TIMEOUT_SECONDS) -> None:
        self.http = http
        self.wait_timeout = wait_timeout

    async def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = await self.http.request(method, path, json=body, headers=request_id_headers())
        except httpx.TransportError as err:
            logger.error("chainapi unreachable at %s %s: %r", method, path, err)
            raise ServiceUnavailableError(f"chainapi is unreachable at {self.http.base_url}: {err!r}") from err
        if response.is_success:
            return response.json()
        raise _error_from_response(response)

    async def relay(self, raw_transaction: str, tx_hash: str) -> dict[str, Any]:
        body = {"kind": "relay", "raw_transaction": raw_transaction, "idempotency_key": tx_hash}
        return await self._request("POST", "/transactions", body)

    async def get(self, tx_id: str) -> dict[str, Any]:
        return await self._request("GET", f"/transactions/{tx_id}")

    async def run_operator(self, function: str, args: list[Any], idempotency_key: str) -> dict[str, Any]:
        """Send a platform transaction and return it once mined; raise if it reverted or failed."""
        body = {"kind": "operator", "function": function, "args": args, "idempotency_key": idempotency_key}
        tx = await self._request("POST", "/transactions", body)
        tx = await self.wait(tx)
        if tx["status"] == "reverted":
            raise TransactionRevertedError(f"{function} reverted in tx {tx['tx_hash']}: {tx['error']}")
        if tx["status"] == "rejected":
            raise ChainError(f"{function} was rejected by the node: {tx['error']}")
        return tx

    async def wait(self, tx: dict[str, Any]) -> dict[str, Any]:
        """Poll a transaction until it is no longer pending, for at most `wait_timeout` seconds."""
        deadline = time.monotonic() + self.wait_timeout
        while tx["status"] == "pending":
            if time.monotonic() > deadline:
                raise ChainError(f"tx {tx['tx_id']} still pending after {self.wait_timeout} s; see GET /api/transactions")
            await asyncio.sleep(POLL_SECONDS)
            tx = await self.get(tx["tx_id"])
        return tx


def _error_from_response(response: httpx.Response) -> PlatformError:
    try:
        payload = response.json()
        detail, field = str(payload["detail"]), payload.get("field")
    except (ValueError, KeyError, TypeError):
        detail, field = response.text[:200], None
    if response.status_code == 422:
        return ValidationError(detail, field=field)
    if response.status_code == 404:
        return NotFoundError(detail, field=field)
    return ChainError(f"chainapi returned {response.status_code}: {detail}", field=field)
