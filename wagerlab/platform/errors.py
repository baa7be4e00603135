"""Errors of the platform's HTTP services, each mapped to one status and error code.

A handler raises one of these; the app turns it into `{"error", "detail", "field"}` with
the class's status. The detail names the bad value and, where one exists, the fix.
"""

from __future__ import annotations

from typing import Any, ClassVar

import aiohttp

NODE_UNREACHABLE_ERRORS = (aiohttp.ClientError, TimeoutError, ConnectionError, OSError)
"""Exceptions web3's AsyncHTTPProvider raises when the node does not respond."""


class PlatformError(Exception):
    """Base of every error a platform service reports to its client.

    A subclass sets its HTTP status and error code as class keywords, for example
    `class NotFoundError(PlatformError, status_code=404, code="not_found")`, and inherits
    its parent's where it leaves them out.
    """

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init_subclass__(cls, *, status_code: int | None = None, code: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if status_code is not None:
            cls.status_code = status_code
        if code is not None:
            cls.code = code

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field

    def to_json(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, "field": self.field}


class InvalidJsonError(PlatformError, status_code=400, code="invalid_json"):
    """The request body is not valid JSON."""


class ValidationError(PlatformError, status_code=422, code="invalid_field"):
    """A field of the request is missing, has the wrong type or is out of range."""


class AuthenticationError(PlatformError, status_code=401, code="unauthorized"):
    """The bearer token is missing, unknown or expired."""


class NotFoundError(PlatformError, status_code=404, code="not_found"):
    """The requested resource (a bet, market, transaction or path) does not exist."""


class ConflictError(PlatformError, status_code=409, code="conflict"):
    """The request clashes with existing state (a duplicate, or a market not open)."""


class TransactionRevertedError(PlatformError, status_code=409, code="transaction_reverted"):
    """A platform transaction was mined but reverted. The detail contains the decoded error."""


class ChainError(PlatformError, status_code=502, code="chain_error"):
    """The node rejected a transaction, or a transaction did not finish in time."""


class ServiceUnavailableError(PlatformError, status_code=503, code="service_unavailable"):
    """A service this one depends on (chainapi, the node) cannot be reached."""
