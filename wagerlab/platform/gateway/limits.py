"""The gateway's limits, with defaults that any run can override through `config.security`."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


class LimitsError(ValueError):
    """A `security` entry of the platform config is unknown or not a positive integer."""


@dataclass(frozen=True)
class GatewayLimits:
    """Windows are in seconds; every limit counts requests or attempts within one window."""

    window_seconds: int = 10
    ip_requests: int = 5_000
    """Requests one IP may make per window before it gets 429.

    NOTE: every simulated bettor of a run connects from 127.0.0.1, so this default must stay
    above a whole run's rate: fight_night peaked at 1,105 requests per 10 s in one run.
    A scenario with more bettors or concurrency may need a higher limit in `[gateway]`.
    """
    ip_block_requests: int = 10_000
    """Requests per window at which an IP counts as flooding and is blocked."""
    ip_block_seconds: int = 60
    account_requests: int = 2_000
    """Requests one authenticated account may make per window before it gets 429."""
    login_failures: int = 5
    """Failed logins after which an account is locked until an admin unlocks it."""
    login_failure_window_seconds: int = 900
    ip_login_failures: int = 20
    """Failed logins from one IP, over any accounts, after which the IP is blocked."""
    retry_attempts: int = 8
    """Sends of a queued bet or claim by one gateway process before it gives up on the job."""
    retry_base_delay_ms: int = 250
    retry_max_delay_ms: int = 4_000
    retry_inline_wait_ms: int = 3_000
    """How long a queued request waits for its retries before the client gets 202 `queued`."""
    retry_queue_jobs: int = 10_000
    """Jobs that may wait for a retry at once; beyond it a bet or claim gets 503 instead of 202."""
    monitor_poll_ms: int = 500
    """Interval between the contract monitor's requests for new blocks."""
    gas_warmup_calls: int = 20
    """Successful calls of a function before its gas use is compared with the mean."""
    gas_factor_percent: int = 300
    revert_burst: int = 5
    revert_window_blocks: int = 20
    auto_pause: int = 1
    """1 lets a critical contract alert pause the Sportsbook through the guardian; 0 only alerts."""

    @classmethod
    def from_overrides(cls, overrides: dict[str, Any]) -> GatewayLimits:
        """Build limits from `config.security`, rejecting unknown names and non-positive values."""
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise LimitsError(f"unknown security limits {unknown}: expected some of {sorted(known)}")
        for name, value in overrides.items():
            if name == "auto_pause" and value in (0, 1) and not isinstance(value, bool):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise LimitsError(f"security limit {name!r} must be a positive integer, got {value!r}")
        limits = cls(**overrides)
        if limits.ip_block_requests < limits.ip_requests:
            raise LimitsError(
                f"ip_block_requests ({limits.ip_block_requests}) must be at least ip_requests ({limits.ip_requests})"
            )
        return limits
