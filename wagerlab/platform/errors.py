"""Errors of the platform's HTTP services, each mapped to one status and error code.

A handler raises one of these; the app turns it into `{"error", "detail", "field"}` with
the class's status. The detail names the bad value and, where one exists, the fix.
"""

from __future__ import annotations

from typing import Any

import aiohttp

NODE_UNREACHABLE_ERRORS = (aiohttp.ClientError, TimeoutError, ConnectionError, OSError)
"""Exceptions web3's AsyncHTTPProvider raises when the node does not respond."""


class PlatformError(Exception):
    """Base of every error a platform service reports to its client."""

    status_code = 500
    code = "internal_error"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field

    def to_json(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, "field": self.field}


class InvalidJsonError(PlatformError):
    """The request body is not valid JSON."""

    status_code = 400
    code = "invalid_json"


class ValidationError(PlatformError):
    """A field of the request is missing, has the wrong type or is out of range."""

    status_code = 422
    code = "invalid_field"


class AuthenticationError(PlatformError):
    """The bearer token is missing, unknown or expired."""

    status_code = 401
    code = "unauthorized"


class NotFoundError(PlatformError):
    status_code = 404
    code = "not_found"


class ConflictError(PlatformError):
    """The request clashes with existing state (a duplicate, or a market not open)."""

    status_code = 409
    code = "conflict"


class TransactionRevertedError(PlatformError):
    """A platform transaction was mined but reverted. The detail contains the decoded error."""

    status_code = 409
    code = "transaction_reverted"


class ChainError(PlatformError):
    """The node rejected a transaction, or a transaction did not finish in time."""

    status_code = 502
    code = "chain_error"


class ServiceUnavailableError(PlatformError):
    """A service this one depends on (chainapi, the node) cannot be reached."""

    status_code = 503
    code = "service_unavailable"
