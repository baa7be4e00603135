"""The catch-all handler: identify the client, apply the guards, forward, and log the request."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable
from typing import Any

import httpx
from eth_utils import keccak
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from wagerlab.platform.db import AlertSeverity, RetryStatus
from wagerlab.platform.errors import (
    AuthenticationError,
    NotFoundError,
    PlatformError,
    ServiceUnavailableError,
    ValidationError,
)
from wagerlab.platform.gateway.client_ip import client_ip
from wagerlab.platform.gateway.context import GatewayContext, Upstream, gateway_context
from wagerlab.platform.gateway.counters import REDIS_UNREACHABLE
from wagerlab.platform.gateway.errors import RateLimitedError, UpstreamUnavailableError
from wagerlab.platform.gateway.retry import RetryJob, is_retryable, replay_headers
from wagerlab.platform.jsonbody import UnacceptableJson, parse_json_body

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20
CLIENT_CLOSED_REQUEST = 499
"""The status nginx logs for a client that closed the connection first; never sent, only logged."""
LOGGED_TEXT_CHARS = 4096
LOGIN_PATH = "/api/login"
RETRYABLE_PATHS = frozenset({"/api/bets", "/api/claims"})
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers", "transfer-encoding", "upgrade",
     "host", "content-length", "content-encoding"}
)
LOGGED_HEADERS = ("authorization", "user-agent", "x-forwarded-for", "content-type")
QUOTE_FIELDS = frozenset({"signature", "stake", "raw_transaction.from"})
"""Besides `quote.*`, the bet fields whose rejection means a quote was misused."""
RULE_INVALID_QUOTE = "invalid_quote"
RULE_LIMITS_UNAVAILABLE = "limits_unavailable"


class RequestRecord:
    """The forensic record of one request, filled in as the request is handled."""

    def __init__(self, request: Request, ip: str, body: bytes) -> None:
        self.started = time.monotonic()
        self.fields: dict[str, Any] = {
            "at": time.time(),
            "ip": ip,
            "peer": request.client.host if request.client else None,
            "method": request.method,
            "path": request.url.path,
            "query": dict(request.query_params),
            "headers": {name: request.headers[name] for name in LOGGED_HEADERS if name in request.headers},
            "body": _loggable_body(body),
            "account": None,
        }

    def finish(self, status: int, outcome: str) -> dict[str, Any]:
        self.fields["status"] = status
        self.fields["outcome"] = outcome
        self.fields["duration_ms"] = round((time.monotonic() - self.started) * 1000, 2)
        return self.fields


def _loggable_body(body: bytes) -> Any:
    if not body:
        return None
    try:
        return parse_json_body(body)
    except UnacceptableJson:
        return {"unparsed": body[:LOGGED_TEXT_CHARS].decode(errors="replace"), "bytes": len(body)}


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def is_admin(ctx: GatewayContext, request: Request) -> bool:
    token = bearer(request)
    return token is not None and hmac.compare_digest(token.encode(), ctx.config.admin_token.encode())


async def account_of(ctx: GatewayContext, request: Request, body: bytes) -> str | None:
    """Return the account a request acts for: the login's username or the bearer token's owner."""
    if request.url.path == LOGIN_PATH:
        username = _json_field(body, "username")
        return username if isinstance(username, str) and username else None
    token = bearer(request)
    if token is None:
        return None
    if is_admin(ctx, request):
        return "admin"
    return await ctx.counters.flag(f"token:{token_digest(token)}")


def _json_field(body: bytes, name: str) -> Any:
    try:
        value = parse_json_body(body)
    except UnacceptableJson:
        return None
    return value.get(name) if isinstance(value, dict) else None


def error_response(error: PlatformError) -> JSONResponse:
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, RateLimitedError) else None
    return JSONResponse(error.to_json(), status_code=error.status_code, headers=headers)


async def read_body(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise ValidationError(f"request body is larger than {MAX_BODY_BYTES} bytes", field="body")
    return body


async def handle(request: Request) -> Response:
    """Route one request to its upstream under the guards, and append it to the forensic log on every outcome."""
    ctx = gateway_context(request)
    peer = request.client.host if request.client else "unknown"
    ip = client_ip(peer, request.headers.get("x-forwarded-for"), ctx.trusted_proxies)
    body = b""
    record: RequestRecord | None = None
    try:
        body = await read_body(request)
        record = RequestRecord(request, ip, body)
        response, outcome = await _guarded(ctx, request, ip, body, record)
    except PlatformError as error:
        record = record or RequestRecord(request, ip, b"")
        response, outcome = error_response(error), error.code
    except ClientDisconnect:
        # The client gave up (a timeout, usually) before sending its whole body; nobody
        # reads this response, but the attempt still belongs in the forensic log.
        logger.info("%s %s from %s: client disconnected before the body was read", request.method, request.url.path, ip)
        record = record or RequestRecord(request, ip, b"")
        response, outcome = Response(status_code=CLIENT_CLOSED_REQUEST), "client_disconnected"
    ctx.forensics.append(record.finish(response.status_code, outcome))
    return response


async def _guarded(ctx: GatewayContext, request: Request, ip: str, body: bytes, record: RequestRecord) -> tuple[Response, str]:
    account = await _apply_limits(ctx, request, ip, body)
    record.fields["account"] = account

    upstream = ctx.upstream_for(request.url.path)
    if upstream is None:
        raise NotFoundError(f"no service serves {request.method} {request.url.path}: paths start with /api or /gateway")
    if upstream.admin_only and not is_admin(ctx, request):
        raise AuthenticationError(f"{upstream.prefix} is internal: only the admin token may call it through the gateway")

    if request.url.path == LOGIN_PATH and request.method == "POST" and account is not None:
        return await _login(ctx, request, upstream, ip, account, body)
    return await _forward_or_queue(ctx, request, upstream, ip, body)


async def _apply_limits(ctx: GatewayContext, request: Request, ip: str, body: bytes) -> str | None:
    """Apply the per-IP and per-account limits and return the account the request acts for.

    The limits are counted in Redis. While Redis is unreachable the request goes on without
    them (fail open), so an outage of the counters does not stop trading. Logins fail closed
    instead, in `_login`, because their failures could not be counted.
    """
    try:
        await ctx.requests.check_ip(ip)
        account = await account_of(ctx, request, body)
        if account is not None and request.url.path != LOGIN_PATH:
            await ctx.requests.check_account(account)
    except REDIS_UNREACHABLE as err:
        await _limits_unavailable(ctx, request, ip, err)
        return _json_field(body, "username") if request.url.path == LOGIN_PATH else None
    if ctx.unlimited_requests:
        logger.warning("gateway: Redis is reachable again; %d requests passed without rate limits meanwhile", ctx.unlimited_requests)
        ctx.unlimited_requests = 0
    return account


async def _limits_unavailable(ctx: GatewayContext, request: Request, ip: str, err: Exception) -> None:
    """Log and alert once when Redis becomes unreachable, then count the requests let through."""
    ctx.unlimited_requests += 1
    if ctx.unlimited_requests > 1:
        return
    detail = f"Redis is unreachable ({type(err).__name__}: {err}); requests pass without rate limits and logins are rejected until it is back"
    logger.warning("gateway: %s (first: %s %s from %s)", detail, request.method, request.url.path, ip)
    await ctx.alert(RULE_LIMITS_UNAVAILABLE, AlertSeverity.CRITICAL, detail)


async def _login(ctx: GatewayContext, request: Request, upstream: Upstream, ip: str, username: str, body: bytes) -> tuple[Response, str]:
    try:
        await ctx.logins.begin(username)
    except REDIS_UNREACHABLE as err:
        logger.warning("gateway: login of %r from %s rejected because Redis is unreachable: %s", username, ip, err)
        raise ServiceUnavailableError(
            "login is unavailable while the gateway cannot reach Redis to count failed attempts: retry in a few seconds;"
            " tokens already issued keep working"
        ) from err
    try:
        response = await forward(upstream, request.method, request.url.path, request.url.query, _forward_headers(request, ip), body)
    except BaseException:
        await _count_login(ctx.logins.released(username), username)
        raise
    if response.status_code == 200:
        await _count_login(ctx.logins.succeeded(username), username)
        await _count_login(_remember_token(ctx, response, username), username)
        return to_response(response), "login_succeeded"
    if response.status_code == 401:
        await _count_login(ctx.logins.failed(username, ip), username)
        return to_response(response), "login_failed"
    await _count_login(ctx.logins.released(username), username)
    return to_response(response), "forwarded"


async def _count_login(update: Awaitable[None], username: str) -> None:
    """Await a login counter update. The api has already responded, so a Redis error only loses the count."""
    try:
        await update
    except REDIS_UNREACHABLE as err:
        logger.warning("gateway: login counters of %r not updated, Redis is unreachable: %s", username, err)


async def _remember_token(ctx: GatewayContext, response: httpx.Response, username: str) -> None:
    body = response.json()
    token, ttl = body.get("token"), body.get("expires_in")
    if isinstance(token, str) and isinstance(ttl, int) and ttl > 0:
        await ctx.counters.redis.set(ctx.counters.key(f"token:{token_digest(token)}"), username, ex=ttl)


async def _forward_or_queue(ctx: GatewayContext, request: Request, upstream: Upstream, ip: str, body: bytes) -> tuple[Response, str]:
    headers = _forward_headers(request, ip)
    retryable = request.method == "POST" and request.url.path in RETRYABLE_PATHS
    try:
        response = await forward(upstream, request.method, request.url.path, request.url.query, headers, body)
    except httpx.TransportError as err:
        if not retryable:
            raise UpstreamUnavailableError(f"{upstream.name} did not respond ({type(err).__name__}): try again shortly") from err
        return await _queue(ctx, request, headers, body, f"{upstream.name} unreachable")
    if retryable and is_retryable(response.status_code):
        return await _queue(ctx, request, headers, body, f"{upstream.name} returned {response.status_code}")
    if retryable and response.status_code < 300:
        key = _transaction_hash(body)
        if key is not None:
            await ctx.retries.record_forwarded(key, response)
    if request.url.path == "/api/bets" and response.status_code == 422:
        await _report_quote_rejection(ctx, response, ip)
    return to_response(response), "forwarded"


async def _report_quote_rejection(ctx: GatewayContext, response: httpx.Response, ip: str) -> None:
    """Alert when the api rejects a bet for its quote or signature: a replayed, expired or tampered quote.

    One alert per IP per window is enough to point at the forensic log, which has every attempt.
    """
    try:
        field = response.json().get("field") or ""
    except (ValueError, AttributeError):
        return
    if not (field.startswith("quote.") or field in QUOTE_FIELDS):
        return
    try:
        first_in_window = await ctx.counters.set_flag(f"quote-alert:{ip}", field, ctx.limits.window_seconds)
    except REDIS_UNREACHABLE as err:
        logger.warning("gateway: Redis is unreachable, alerting on every rejected quote from %s: %s", ip, err)
        first_in_window = True
    if first_in_window:
        detail = f"a bet from {ip} was rejected for {field}: {response.json().get('detail')}"
        await ctx.alert(RULE_INVALID_QUOTE, AlertSeverity.WARNING, detail)


async def _queue(ctx: GatewayContext, request: Request, headers: dict[str, str], body: bytes, reason: str) -> tuple[Response, str]:
    """Queue the request for retries; return the upstream's response if a retry gets one soon, else 202 `queued`."""
    key = _transaction_hash(body)
    if key is None:
        raise UpstreamUnavailableError(f"{request.url.path} is unavailable ({reason}) and the body has no raw_transaction to queue")
    if is_admin(ctx, request):
        raise UpstreamUnavailableError(
            f"{request.url.path} is unavailable ({reason}); a request with the admin token is never queued, "
            "because the gateway stores no admin token: send it again with a bettor's token"
        )
    token = bearer(request)
    job = RetryJob(
        key=key,
        method=request.method,
        path=request.url.path,
        headers=replay_headers(headers),
        body=body,
        token_sha256=token_digest(token) if token else None,
    )
    job = await ctx.retries.enqueue(job)
    logger.info("%s %s queued (%s) under key %s", request.method, request.url.path, reason, key)

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(job.done.wait(), timeout=ctx.limits.retry_inline_wait_ms / 1000)
    if job.status is RetryStatus.SENT and job.response_status is not None:
        return JSONResponse(job.response, status_code=job.response_status), "retried"
    payload = {**job.to_json(), "tx_hash": key, "retry_url": f"/gateway/retries/{key}"}
    return JSONResponse(payload, status_code=202), "queued"


def _transaction_hash(body: bytes) -> str | None:
    raw = _json_field(body, "raw_transaction")
    if not isinstance(raw, str):
        return None
    try:
        return "0x" + keccak(bytes.fromhex(raw.removeprefix("0x"))).hex()
    except ValueError:
        return None


def _forward_headers(request: Request, ip: str) -> dict[str, str]:
    headers = {name: value for name, value in request.headers.items() if name not in HOP_BY_HOP}
    headers["x-forwarded-for"] = ip
    return headers


async def forward(upstream: Upstream, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    url = path + (f"?{query}" if query else "")
    logger.debug("forwarding %s %s to %s", method, url, upstream.name)
    return await upstream.client.request(method, url, headers=headers, content=body)


def to_response(response: httpx.Response) -> Response:
    headers = {name: value for name, value in response.headers.items() if name.lower() not in HOP_BY_HOP}
    return Response(response.content, status_code=response.status_code, headers=headers)
