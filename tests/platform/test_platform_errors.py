"""Each platform error's HTTP status and error code, set by class keywords on `PlatformError`."""

from __future__ import annotations

import pytest

from wagerlab.platform.errors import (
    AuthenticationError,
    ChainError,
    ConflictError,
    InvalidJsonError,
    NotFoundError,
    PlatformError,
    ServiceUnavailableError,
    TransactionRevertedError,
    ValidationError,
)
from wagerlab.platform.gateway.errors import AccountLockedError, IpBlockedError, RateLimitedError, UpstreamUnavailableError

ERRORS = [
    (PlatformError, 500, "internal_error"),
    (InvalidJsonError, 400, "invalid_json"),
    (ValidationError, 422, "invalid_field"),
    (AuthenticationError, 401, "unauthorized"),
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (TransactionRevertedError, 409, "transaction_reverted"),
    (ChainError, 502, "chain_error"),
    (ServiceUnavailableError, 503, "service_unavailable"),
    (AccountLockedError, 423, "account_locked"),
    (UpstreamUnavailableError, 503, "service_unavailable"),
]


@pytest.mark.parametrize(("error_type", "status_code", "code"), ERRORS)
def test_error_status_and_code(error_type: type[PlatformError], status_code: int, code: str) -> None:
    error = error_type("market 7 not found", field="market_id")

    assert error.status_code == status_code
    assert error.code == code
    assert error.to_json() == {"error": code, "detail": "market 7 not found", "field": "market_id"}
    assert str(error) == "market 7 not found"


@pytest.mark.parametrize(
    ("error_type", "status_code", "code"),
    [(RateLimitedError, 429, "rate_limited"), (IpBlockedError, 403, "ip_blocked")],
)
def test_rate_limit_errors_keep_retry_after(error_type: type[RateLimitedError], status_code: int, code: str) -> None:
    error = error_type("too many requests from 10.0.0.1", retry_after=30)

    assert (error.status_code, error.code) == (status_code, code)
    assert error.retry_after == 30
    assert error.to_json()["error"] == code


def test_subclass_inherits_left_out_keywords() -> None:
    class MarketGoneError(NotFoundError, code="market_gone"):
        pass

    class StillNotFoundError(NotFoundError):
        pass

    assert (MarketGoneError.status_code, MarketGoneError.code) == (404, "market_gone")
    assert (StillNotFoundError.status_code, StillNotFoundError.code) == (404, "not_found")
    assert (NotFoundError.status_code, NotFoundError.code) == (404, "not_found")


def test_subclass_rejects_unknown_keyword() -> None:
    with pytest.raises(TypeError, match="takes no keyword arguments"):

        class _Misspelled(PlatformError, status=418):
            pass
