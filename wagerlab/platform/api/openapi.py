"""The OpenAPI 3.1 description of the REST API, served at `GET /api/openapi.json`.

Request bodies are described as the handlers validate them, so that a schema-driven fuzzer
generates valid requests as well as invalid ones. Every error has the platform's
`{error, detail, field}` body; `field` names the invalid part of the request.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

INTEGER = {"type": "integer"}
AMOUNT = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
ADDRESS = {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"}
HEX = {"type": "string", "pattern": "^0x[0-9a-fA-F]*$"}
ODDS_LIST = {"type": "array", "items": {"type": "integer", "minimum": 1_000_001}, "minItems": 2, "maxItems": 8}
ERROR = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}, "field": {"type": ["string", "null"]}},
}
TRANSACTION = {
    "type": "object",
    "required": ["tx_id", "tx_hash"],
    "properties": {"tx_id": {"type": "string"}, "tx_hash": {"type": "string"}},
}


def _object(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _operation(summary: str, ok_status: int, ok_schema: dict[str, Any], *, body: dict[str, Any] | None = None,
               auth: bool = True, path_ints: tuple[str, ...] = (), path_strings: tuple[str, ...] = ()) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {
            str(ok_status): {"description": "success", "content": {"application/json": {"schema": ok_schema}}},
            "default": {"description": "an error", "content": {"application/json": {"schema": ERROR}}},
        },
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if auth:
        operation["security"] = [{"bearer": []}]
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}} for name in path_ints]
    parameters += [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in path_strings]
    if parameters:
        operation["parameters"] = parameters
    return operation


MARKET = _object(["market_id", "name", "outcomes", "status", "closes_at"], market_id=INTEGER, name={"type": "string"},
                 outcomes={"type": "array", "items": {"type": "string"}}, status={"type": "string"}, closes_at=INTEGER)
CREDENTIALS = _object(["username", "password"], username={"type": "string", "maxLength": 64}, password={"type": "string", "maxLength": 1024})
RAW_TRANSACTION = _object(["raw_transaction"], raw_transaction=HEX)
ANY_OBJECT: dict[str, Any] = {"type": "object"}

PATHS: dict[str, dict[str, Any]] = {
    "/api/register": {"post": _operation(
        "Register a user", 201, _object(["user_id", "username", "address"], user_id=INTEGER, username={"type": "string"}, address=ADDRESS),
        body=_object(["username", "password", "address"], username={"type": "string", "pattern": "^[A-Za-z0-9_.-]{3,64}$"},
                     password={"type": "string", "minLength": 8, "maxLength": 1024}, address=ADDRESS),
        auth=False,
    )},
    "/api/login": {"post": _operation(
        "Log in and get a bearer token", 200, _object(["token", "expires_in"], token={"type": "string"}, expires_in=INTEGER),
        body=CREDENTIALS, auth=False,
    )},
    "/api/markets": {"get": _operation("List the markets", 200, {"type": "array", "items": MARKET})},
    "/api/markets/{market_id}/odds": {"get": _operation(
        "Read a market's odds", 200, _object(["market_id", "odds"], market_id=INTEGER, odds={"type": "array", "items": INTEGER}),
        path_ints=("market_id",),
    )},
    "/api/quotes": {"post": _operation(
        "Get a signed quote", 200, _object(["quote", "signature"], quote=ANY_OBJECT, signature=HEX),
        body=_object(["market_id", "outcome", "stake"], market_id=INTEGER, outcome={"type": "integer", "minimum": 0, "maximum": 255},
                     stake={"type": "integer", "minimum": 1, "maximum": 2**63 - 1}),
    )},
    "/api/bets": {
        "post": _operation("Relay a signed placeBet", 202, TRANSACTION, body=RAW_TRANSACTION),
        "get": _operation("List the caller's bets", 200, {"type": "array", "items": ANY_OBJECT}),
    },
    "/api/bets/{bet_id}": {"get": _operation("Read one of the caller's bets", 200, ANY_OBJECT, path_ints=("bet_id",))},
    "/api/claims": {"post": _operation("Relay a signed claim", 202, TRANSACTION, body=RAW_TRANSACTION)},
    "/api/balance": {"get": _operation("Read the caller's balance", 200, _object(["available", "staked"], available=AMOUNT, staked=AMOUNT))},
    "/api/deposit": {"get": _operation("How to deposit", 200, ANY_OBJECT)},
    "/api/transactions/{tx_id}": {"get": _operation("Read a relayed transaction", 200, ANY_OBJECT, path_strings=("tx_id",))},
    "/api/admin/markets": {"post": _operation(
        "Create a market (admin)", 201, ANY_OBJECT,
        body=_object(["market_id", "name", "outcomes", "closes_at", "liability_cap", "odds"], market_id=INTEGER, name={"type": "string"},
                     outcomes={"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 8}, closes_at=INTEGER,
                     liability_cap=AMOUNT, odds=ODDS_LIST),
    )},
    "/api/admin/markets/{market_id}/odds": {"put": _operation(
        "Change a market's odds (admin)", 200, ANY_OBJECT, body=_object(["odds"], odds=ODDS_LIST), path_ints=("market_id",),
    )},
    "/api/admin/markets/{market_id}/close": {"post": _operation("Close a market (admin)", 200, ANY_OBJECT, path_ints=("market_id",))},
    "/api/admin/pause": {"post": _operation("Pause the Sportsbook (admin)", 200, ANY_OBJECT)},
    "/api/admin/unpause": {"post": _operation("Unpause the Sportsbook (admin)", 200, ANY_OBJECT)},
    "/api/stats": {"get": _operation("Cache and request counters", 200, ANY_OBJECT, auth=False)},
    "/api/health": {"get": _operation("Liveness", 200, _object(["status"], status={"type": "string"}), auth=False)},
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "wagerlab REST API", "version": "1"},
    "paths": PATHS,
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
}


async def get_openapi(request: Request) -> JSONResponse:
    return JSONResponse(OPENAPI)
