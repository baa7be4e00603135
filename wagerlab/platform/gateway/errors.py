"""Errors the gateway returns itself, in the platform's `{"error", "detail", "field"}` form."""

from __future__ import annotations

from wagerlab.platform.errors import PlatformError, ServiceUnavailableError


class RateLimitedError(PlatformError, status_code=429, code="rate_limited"):
    """The client IP or account made more requests in the window than its limit allows."""

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class IpBlockedError(RateLimitedError, status_code=403, code="ip_blocked"):
    """The client IP is blocked for a while after flooding or credential stuffing."""


class AccountLockedError(PlatformError, status_code=423, code="account_locked"):
    """The account is locked after repeated failed logins, until an admin unlocks it."""


class UpstreamUnavailableError(ServiceUnavailableError):
    """The service a path routes to did not respond (503, `service_unavailable`)."""
