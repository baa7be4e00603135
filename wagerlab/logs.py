"""Logging setup for every wagerlab process, and the request id that follows one request.

`configure_logging` writes text or JSON lines to stderr. Every record carries
`request_id`: the id of the HTTP request being handled, or `-` outside a request.
`RequestIdMiddleware` takes the id from the `X-Request-ID` header, which the first
service on the request's path generated, or generates one itself. It keeps the id in a
context variable, which the log filter and outgoing calls read. It also echoes the id in
the response and logs one line per request.
"""

from __future__ import annotations

import contextvars
import enum
import json
import logging
import re
import sys
import time
import uuid
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("wagerlab.access")

REQUEST_ID_HEADER = "X-Request-ID"
NO_REQUEST_ID = "-"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
"""Ids accepted from a client; anything else is replaced, so ids cannot inject log lines."""

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("wagerlab_request_id", default=None)


class LogFormat(str, enum.Enum):
    TEXT = "text"
    JSON = "json"


class LogFormatError(ValueError):
    """Raised for a log format name other than `text` or `json`."""


def current_request_id() -> str | None:
    """Return the id of the request this task or thread is handling, or None."""
    return request_id_var.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


def accepted_request_id(value: str | None) -> str:
    """Return `value` when it is a well-formed id, otherwise a new one."""
    if value is not None and _VALID_REQUEST_ID.match(value):
        return value
    return new_request_id()


def request_id_headers() -> dict[str, str]:
    """Return the header that passes the current request id to another service, if any."""
    request_id = current_request_id()
    return {} if request_id is None else {REQUEST_ID_HEADER: request_id}


class RequestIdFilter(logging.Filter):
    """Sets `record.request_id` on every record, so formatters can always use it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() or NO_REQUEST_ID
        return True


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object per line, with `extra=` fields kept."""

    _STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "request_id"}
    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", NO_REQUEST_ID),
        }
        for key, value in record.__dict__.items():
            if key not in self._STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def make_formatter(log_format: LogFormat | str) -> logging.Formatter:
    try:
        chosen = LogFormat(log_format)
    except ValueError as err:
        raise LogFormatError(f"invalid log format {log_format!r}: use 'text' or 'json'") from err
    return JsonFormatter() if chosen is LogFormat.JSON else logging.Formatter(TEXT_FORMAT)


def configure_logging(level: str, log_format: LogFormat | str = LogFormat.TEXT, *, console_level: str | None = None) -> logging.Handler:
    """Send records of `level` and above to stderr in `log_format`; return the handler."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel((console_level or level).upper())
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    # httpx logs every request at INFO; the services log their own requests.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return handler


def route_label(scope: Scope) -> str:
    """Return the route template the router matched, e.g. `/api/bets/{bet_id}`, or `unmatched`."""
    route = scope.get("route")
    if isinstance(route, Route):
        return route.path
    if isinstance(route, Mount):
        return f"{route.path}/{{path}}"
    return "unmatched"


class RequestIdMiddleware:
    """ASGI middleware that sets the request id for the request and logs one line for it."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header_name = REQUEST_ID_HEADER.lower().encode("latin-1")
        incoming = dict(scope["headers"]).get(header_name)
        request_id = accepted_request_id(None if incoming is None else incoming.decode("latin-1"))
        # Handlers that forward the request's headers (the gateway) pass on the accepted id.
        scope["headers"] = [(name, value) for name, value in scope["headers"] if name != header_name]
        scope["headers"].append((header_name, request_id.encode("latin-1")))
        token = request_id_var.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            access_logger.info(
                "%s %s %s -> %s in %.1f ms",
                self.service,
                scope["method"],
                route_label(scope),
                status,
                elapsed_ms,
                extra={"service": self.service, "path": scope["path"], "status": status},
            )
            request_id_var.reset(token)
