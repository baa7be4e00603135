"""Errors the gateway returns itself, in the platform's `{"error", "detail", "field"}` form."""

from __future__ import annotations

from wagerlab.platform.errors import PlatformError


class RateLimitedError(PlatformError):
    """The client IP or account made more requests in the window than its limit allows."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class IpBlockedError(RateLimitedError):
    """The client IP is blocked for a while after flooding or credential stuffing."""

    status_code = 403
    code = "ip_blocked"


class AccountLockedError(PlatformError):
    """The account is locked after repeated failed logins, until an admin unlocks it."""

    status_code = 423
    code = "account_locked"


class UpstreamUnavailableError(PlatformError):
    """The service a path routes to did not respond."""

    status_code = 503
    code = "service_unavailable"
