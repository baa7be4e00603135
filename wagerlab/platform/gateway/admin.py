"""The gateway's own endpoints under `/gateway`: health, queued retries, unlock and unblock."""

from __future__ import annotations

import hmac
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from wagerlab.platform.api.validation import read_json_object, require_address, require_str
from wagerlab.platform.errors import AuthenticationError, NotFoundError, PlatformError, ValidationError
from wagerlab.platform.gateway.context import gateway_context
from wagerlab.platform.gateway.proxy import RequestRecord, bearer, client_ip, error_response, is_admin, token_digest

logger = logging.getLogger(__name__)


def _require_admin(request: Request) -> None:
    if not is_admin(gateway_context(request), request):
        raise AuthenticationError("gateway admin endpoints need the admin token from the platform config")


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def get_retry(request: Request) -> JSONResponse:
    """Return a queued job's status to the bettor whose token queued it, or to the admin token."""
    ctx = gateway_context(request)
    token = bearer(request)
    if token is None:
        raise AuthenticationError("a retry's status needs the bearer token that submitted it, or the admin token")
    key = request.path_params["key"]
    job = await ctx.retries.stored_job(key)
    if job is None:
        raise NotFoundError(f"no queued submission has idempotency key {key!r}", field="key")
    owner = job.token_sha256 is not None and hmac.compare_digest(token_digest(token), job.token_sha256)
    if not (owner or is_admin(ctx, request)):
        raise AuthenticationError(f"the bearer token did not submit the job under key {key!r}: send the token that did")
    return JSONResponse(job.to_json())


async def unlock_account(request: Request) -> JSONResponse:
    _require_admin(request)
    username = request.path_params["username"]
    was_locked = await gateway_context(request).logins.unlock(username)
    logger.warning("admin unlocked account %r (was locked: %s)", username, was_locked)
    return JSONResponse({"username": username, "was_locked": was_locked, "locked": False})


async def unblock_ip(request: Request) -> JSONResponse:
    _require_admin(request)
    ip = request.path_params["ip"]
    was_blocked = await gateway_context(request).requests.unblock_ip(ip)
    logger.warning("admin unblocked IP %s", ip)
    return JSONResponse({"ip": ip, "was_blocked": was_blocked})


async def account_status(request: Request) -> JSONResponse:
    _require_admin(request)
    username = request.path_params["username"]
    return JSONResponse({"username": username, "locked": await gateway_context(request).logins.is_locked(username)})


async def watch_contract(request: Request) -> JSONResponse:
    """Add a deployed contract to the contract monitor: `{address, contract}` with its compiled name."""
    _require_admin(request)
    monitor = gateway_context(request).monitor
    if monitor is None:
        raise NotFoundError(
            "the contract monitor is off in this gateway: send the request to the gateway that runs it "
            "(the first gateway that `wagerlab up` prints)"
        )
    body = await read_json_object(request)
    address = require_address(body, "address")
    name = require_str(body, "contract", max_length=100)
    try:
        monitor.watch(address, name)
    except ValueError as err:
        raise ValidationError(str(err), field="contract") from err
    logger.warning("admin added %s at %s to the contract monitor", name, address)
    return JSONResponse({"address": address, "contract": name, "watched": True}, status_code=201)


def logged(endpoint: type | object) -> object:
    """Wrap a gateway endpoint so that it passes the IP guard and writes a forensic entry too."""

    async def wrapped(request: Request) -> Response:
        ctx = gateway_context(request)
        peer = request.client.host if request.client else "unknown"
        ip = client_ip(peer, request.headers.get("x-forwarded-for"), ctx.trusted_proxies)
        record = RequestRecord(request, ip, b"")
        try:
            await ctx.requests.check_ip(ip)
            response = await endpoint(request)  # type: ignore[operator]
            outcome = "served"
        except PlatformError as error:
            response, outcome = error_response(error), error.code
        record.fields["account"] = "admin" if is_admin(ctx, request) else None
        ctx.forensics.append(record.finish(response.status_code, outcome))
        return response

    return wrapped


routes: list[BaseRoute] = [
    Route("/gateway/health", logged(health), methods=["GET"]),
    Route("/gateway/retries/{key}", logged(get_retry), methods=["GET"]),
    Route("/gateway/admin/accounts/{username}", logged(account_status), methods=["GET"]),
    Route("/gateway/admin/accounts/{username}/unlock", logged(unlock_account), methods=["POST"]),
    Route("/gateway/admin/blocks/{ip}", logged(unblock_ip), methods=["DELETE"]),
    Route("/gateway/admin/watch", logged(watch_contract), methods=["POST"]),
]
