"""The REST API as a simulated client sees it: real HTTP requests to the api service."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

TX_POLL_TIMEOUT_SECONDS = 60.0
FINAL_TX_STATUSES = frozenset({"mined", "reverted", "rejected"})


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

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = await self._client.request(method, self.base_url + path, json=body, headers=headers)
        try:
            payload = response.json()
        except ValueError:
            payload = response.text
        if response.status_code >= 400:
            raise ApiError(method, path, response.status_code, payload)
        return payload

    async def register(self, username: str, password: str, address: str) -> dict[str, Any]:
        return await self.request("POST", "/api/register", {"username": username, "password": password, "address": address})

    async def login(self, username: str, password: str) -> str:
        body = await self.request("POST", "/api/login", {"username": username, "password": password})
        self.token = body["token"]
        return self.token

    async def odds(self, market_id: int) -> dict[str, Any]:
        return await self.request("GET", f"/api/markets/{market_id}/odds")

    async def quote(self, market_id: int, outcome: int, stake: int) -> dict[str, Any]:
        return await self.request("POST", "/api/quotes", {"market_id": market_id, "outcome": outcome, "stake": stake})

    async def place_bet(self, raw_transaction: str) -> dict[str, Any]:
        return await self.request("POST", "/api/bets", {"raw_transaction": raw_transaction})

    async def claim(self, raw_transaction: str) -> dict[str, Any]:
        return await self.request("POST", "/api/claims", {"raw_transaction": raw_transaction})

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
