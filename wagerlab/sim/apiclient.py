"""The REST API as a simulated client sees it: real HTTP requests to the api service."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

logger = logging.getLogger(__name__)

TX_POLL_TIMEOUT_SECONDS = 60.0
FINAL_TX_STATUSES = frozenset({"mined", "reverted", "rejected"})
GATEWAY_DOWN_SECONDS = 30.0
"""How long a request keeps retrying while the gateway refuses connections, e.g. during a restart."""
RETRY_POLL_TIMEOUT_SECONDS = 120.0
"""How long a bet or claim the gateway queued is polled at its `retry_url` before the client gives up."""
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)
"""Errors raised before the request reached the server, so sending it again is always safe."""
UNANSWERED_ERRORS = (httpx.ReadError, httpx.RemoteProtocolError)
"""Errors of a request the server may have handled and then closed without a response."""


class ApiError(Exception):
    """The API returned an error status (4xx or 5xx)."""

    def __init__(self, method: str, path: str, status: int, body: Any):
        self.status = status
        self.body = body
        super().__init__(f"{method} {path} returned {status}: {body}")


class ApiClient:
    def __init__(self, client: httpx.AsyncClient, base_url: str, token: str | None = None):
        self._client = client
        self.base_url = base_url.rstrip("/")
        self.token = token

    async def request(self, method: str, path: str, body: Any = None, *, safe_to_resend: bool | None = None) -> Any:
        """Send one request and return its JSON body; raise ApiError on 4xx and 5xx.

        While the gateway is unreachable (a restart takes a second or two), the request is
        sent again for up to GATEWAY_DOWN_SECONDS. A request the server may have handled
        without answering is sent again only when that is safe: by default GET, PUT and
        DELETE, which HTTP defines as idempotent, and the POSTs that pass `safe_to_resend=True`.
        """
        safe_to_resend = method in ("GET", "PUT", "DELETE") if safe_to_resend is None else safe_to_resend
        retryable = NOT_SENT_ERRORS + UNANSWERED_ERRORS if safe_to_resend else NOT_SENT_ERRORS
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        deadline = asyncio.get_running_loop().time() + GATEWAY_DOWN_SECONDS
        delay = 0.05
        while True:
            try:
                response = await self._client.request(method, self.base_url + path, json=body, headers=headers)
                break
            except retryable as err:
                if asyncio.get_running_loop().time() + delay > deadline:
                    raise
                logger.info("%s %s failed (%s), sending it again in %.2f s", method, path, type(err).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        try:
            payload = response.json()
        except ValueError:
            payload = response.text
        if response.status_code >= 400:
            raise ApiError(method, path, response.status_code, payload)
        return payload

    async def register(self, username: str, password: str, address: str) -> dict[str, Any]:
        """Register a user; return `{user_id, username, address}`, without `user_id` after a lost response.

        When the connection breaks before the response, the api may have created the user
        already, so the registration is sent again, and a 409 then is checked by logging in
        with the password: only the first send's user accepts it.
        """
        body = {"username": username, "password": password, "address": address}
        try:
            return await self.request("POST", "/api/register", body)
        except UNANSWERED_ERRORS as err:
            logger.info("POST /api/register of %s got no response (%s); sending it again", username, type(err).__name__)
        try:
            return await self.request("POST", "/api/register", body)
        except ApiError as conflict:
            if conflict.status != 409:
                raise
            await self.login(username, password)
            logger.info("%s was registered by the send that got no response", username)
            return {"username": username, "address": address}

    async def login(self, username: str, password: str) -> str:
        # A login sent twice issues a second token; the first one is never used.
        body = await self.request("POST", "/api/login", {"username": username, "password": password}, safe_to_resend=True)
        self.token = body["token"]
        return self.token

    async def odds(self, market_id: int) -> dict[str, Any]:
        return await self.request("GET", f"/api/markets/{market_id}/odds")

    async def quote(self, market_id: int, outcome: int, stake: int) -> dict[str, Any]:
        # A quote request sent twice issues a second quote; the first one is never used.
        return await self.request("POST", "/api/quotes", {"market_id": market_id, "outcome": outcome, "stake": stake}, safe_to_resend=True)

    async def place_bet(self, raw_transaction: str) -> dict[str, Any]:
        return await self.submit("/api/bets", raw_transaction)

    async def claim(self, raw_transaction: str) -> dict[str, Any]:
        return await self.submit("/api/claims", raw_transaction)

    async def submit(self, path: str, raw_transaction: str) -> dict[str, Any]:
        """Post a signed transaction and return the api's `{tx_id, tx_hash}`, following the gateway's queue.

        Sending the same signed transaction twice is safe, because its hash is the relay's
        idempotency key. When the gateway queued it (202 with a `retry_url`), the retry
        record is polled until the gateway sent the transaction or gave up on it.
        """
        submitted = await self.request("POST", path, {"raw_transaction": raw_transaction}, safe_to_resend=True)
        if "retry_url" not in submitted:
            return submitted
        logger.info("POST %s was queued at the gateway under key %s", path, submitted["idempotency_key"])
        return await self._wait_for_retry(path, submitted["retry_url"])

    async def _wait_for_retry(self, path: str, retry_url: str) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + RETRY_POLL_TIMEOUT_SECONDS
        delay = 0.05
        while True:
            job = await self.request("GET", retry_url)
            if job["status"] == "sent":
                if job["response_status"] >= 400:
                    raise ApiError("POST", path, job["response_status"], job["response"])
                return job["response"]
            if job["status"] == "failed":
                raise ApiError("POST", path, 503, f"the gateway gave up after {job['attempts']} sends: {job['last_error']}")
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"POST {path} still queued at the gateway after {RETRY_POLL_TIMEOUT_SECONDS} s: {job}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def bets(self) -> list[dict[str, Any]]:
        return await self.request("GET", "/api/bets")

    async def balance(self) -> dict[str, int]:
        return await self.request("GET", "/api/balance")

    async def stats(self) -> dict[str, Any]:
        return await self.request("GET", "/api/stats")

    async def wait_for_transaction(self, tx_id: str, *, timeout: float = TX_POLL_TIMEOUT_SECONDS) -> dict[str, Any]:
        """Poll the transaction status until it is final."""
        deadline = asyncio.get_running_loop().time() + timeout
        delay = 0.02
        while True:
            status = await self.request("GET", f"/api/transactions/{tx_id}")
            if status["status"] in FINAL_TX_STATUSES:
                return status
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"transaction {tx_id} still {status['status']!r} after {timeout} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
