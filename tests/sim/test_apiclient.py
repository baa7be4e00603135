"""The simulated client: it waits out a gateway restart and follows bets the gateway queued."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from wagerlab.sim.apiclient import ApiClient, ApiError

pytestmark = pytest.mark.anyio

QUEUED = {"idempotency_key": "0xab", "status": "queued", "attempts": 1, "tx_hash": "0xab", "retry_url": "/gateway/retries/0xab"}


def client_with(handler: Callable[[httpx.Request], httpx.Response]) -> tuple[ApiClient, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ApiClient(http, "http://gateway", token="bettor-token"), http


def failing(times: int, error: type[httpx.TransportError], then: httpx.Response) -> tuple[Callable[[httpx.Request], httpx.Response], list[str]]:
    """Return a handler that raises `error` for the first `times` requests, and the list of paths it saw."""
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if len(seen) <= times:
            raise error("gateway down", request=request)
        return then

    return handle, seen


async def test_request_waits_out_refused_connections() -> None:
    handler, seen = failing(3, httpx.ConnectError, httpx.Response(200, json={"available": 5, "staked": 0}))
    api, http = client_with(handler)
    async with http:
        balance = await api.balance()

    assert balance == {"available": 5, "staked": 0}
    assert seen == ["GET /api/balance"] * 4


async def test_post_resent_after_refused_connection() -> None:
    handler, seen = failing(1, httpx.ConnectError, httpx.Response(201, json={"user_id": 1}))
    api, http = client_with(handler)
    async with http:
        await api.register("rita", "pw", "0x" + "11" * 20)

    assert seen == ["POST /api/register"] * 2


async def test_unsafe_post_not_resent_after_read_error() -> None:
    handler, seen = failing(1, httpx.RemoteProtocolError, httpx.Response(201, json={"market_id": 1}))
    api, http = client_with(handler)
    async with http:
        with pytest.raises(httpx.RemoteProtocolError):
            await api.request("POST", "/api/admin/markets", {"market_id": 1})

    assert seen == ["POST /api/admin/markets"]


def lost_registration(password: str) -> tuple[Callable[[httpx.Request], httpx.Response], list[str]]:
    """Return a handler that creates the user but drops the first response, and the paths it saw."""
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.url.path == "/api/login":
            accepted = json.loads(request.content)["password"] == password
            return httpx.Response(200, json={"token": "t", "expires_in": 60}) if accepted else httpx.Response(401, json={"detail": "invalid"})
        if len(seen) == 1:
            raise httpx.RemoteProtocolError("server disconnected", request=request)
        return httpx.Response(409, json={"error": "conflict", "detail": "username 'rita' is already registered"})

    return handle, seen


async def test_register_recovers_lost_response() -> None:
    handler, seen = lost_registration("pw")
    api, http = client_with(handler)
    async with http:
        registered = await api.register("rita", "pw", "0x" + "11" * 20)

    assert registered == {"username": "rita", "address": "0x" + "11" * 20}
    assert seen == ["POST /api/register", "POST /api/register", "POST /api/login"]


async def test_register_conflict_of_other_user() -> None:
    handler, _ = lost_registration("someone else's password")
    api, http = client_with(handler)
    async with http:
        with pytest.raises(ApiError) as raised:
            await api.register("rita", "pw", "0x" + "11" * 20)

    assert raised.value.status == 401


async def test_bet_resent_after_read_error() -> None:
    handler, seen = failing(1, httpx.RemoteProtocolError, httpx.Response(202, json={"tx_id": "7", "tx_hash": "0xab"}))
    api, http = client_with(handler)
    async with http:
        submitted = await api.place_bet("0x01")

    assert submitted == {"tx_id": "7", "tx_hash": "0xab"}
    assert seen == ["POST /api/bets"] * 2


def queue_then(final: dict[str, object]) -> tuple[Callable[[httpx.Request], httpx.Response], list[str]]:
    """Return a handler that queues the bet, reports it queued once, then reports `final`."""
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.method == "POST":
            return httpx.Response(202, json=QUEUED)
        polls = sum(1 for entry in seen if entry.startswith("GET"))
        return httpx.Response(200, json={**QUEUED, "attempts": polls} if polls == 1 else final)

    return handle, seen


async def test_queued_bet_followed_until_sent() -> None:
    sent = {**QUEUED, "status": "sent", "response_status": 202, "response": {"tx_id": "7", "tx_hash": "0xab"}, "last_error": None}
    handler, seen = queue_then(sent)
    api, http = client_with(handler)
    async with http:
        submitted = await api.place_bet("0x01")

    assert submitted == {"tx_id": "7", "tx_hash": "0xab"}
    assert seen == ["POST /api/bets", "GET /gateway/retries/0xab", "GET /gateway/retries/0xab"]


async def test_queued_bet_rejected_after_send() -> None:
    rejected = {**QUEUED, "status": "sent", "response_status": 422, "response": {"error": "invalid_field", "detail": "quote expired"}}
    handler, _ = queue_then(rejected)
    api, http = client_with(handler)
    async with http:
        with pytest.raises(ApiError, match="quote expired") as raised:
            await api.place_bet("0x01")

    assert raised.value.status == 422


async def test_queued_claim_failed_at_gateway() -> None:
    failed = {**QUEUED, "status": "failed", "attempts": 8, "last_error": "upstream returned 503", "response_status": None, "response": None}
    handler, _ = queue_then(failed)
    api, http = client_with(handler)
    async with http:
        with pytest.raises(ApiError, match="gave up after 8 sends: upstream returned 503") as raised:
            await api.claim("0x01")

    assert raised.value.status == 503
