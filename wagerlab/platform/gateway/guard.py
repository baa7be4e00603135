"""Intrusion detection: rate limits, temporary IP blocks and account lockout after failed logins."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from wagerlab.platform.db import AlertSeverity
from wagerlab.platform.gateway.counters import WindowCounters
from wagerlab.platform.gateway.errors import AccountLockedError, IpBlockedError, RateLimitedError
from wagerlab.platform.gateway.limits import GatewayLimits

logger = logging.getLogger(__name__)

AlertSink = Callable[[str, AlertSeverity, str], Awaitable[None]]
"""Stores an alert given its rule, severity and detail."""

RULE_IP_FLOOD = "ip_flood"
RULE_ACCOUNT_LOCKED = "account_locked"
RULE_CREDENTIAL_STUFFING = "credential_stuffing"
RULE_ACCOUNT_RATE = "account_rate_limited"


class RequestGuard:
    """Per-IP and per-account request limits, and the temporary block of a flooding IP."""

    def __init__(self, counters: WindowCounters, limits: GatewayLimits, alert: AlertSink) -> None:
        self.counters = counters
        self.limits = limits
        self.alert = alert

    async def check_ip(self, ip: str) -> None:
        """Count one request from `ip`; raise when the IP is blocked or over its limit."""
        await self._reject_if_blocked(ip)
        count = await self.counters.hit(f"ip:{ip}", self.limits.window_seconds)
        if count >= self.limits.ip_block_requests:
            await self.block_ip(ip, RULE_IP_FLOOD, f"{count} requests within {self.limits.window_seconds} s")
            await self._reject_if_blocked(ip)
        if count > self.limits.ip_requests:
            raise RateLimitedError(
                f"IP {ip} made {count} requests within {self.limits.window_seconds} s, above the limit of"
                f" {self.limits.ip_requests}: slow down",
                retry_after=max(await self.counters.ttl(f"ip:{ip}"), 1),
            )

    async def check_account(self, account: str) -> None:
        count = await self.counters.hit(f"account:{account}", self.limits.window_seconds)
        if count == self.limits.account_requests + 1:
            await self.alert(RULE_ACCOUNT_RATE, AlertSeverity.WARNING, f"account {account} exceeded {self.limits.account_requests} requests")
        if count > self.limits.account_requests:
            raise RateLimitedError(
                f"account {account} made {count} requests within {self.limits.window_seconds} s, above the limit of"
                f" {self.limits.account_requests}: slow down",
                retry_after=max(await self.counters.ttl(f"account:{account}"), 1),
            )

    async def block_ip(self, ip: str, rule: str, reason: str) -> None:
        """Block `ip` for `ip_block_seconds`; the block expires by itself. Alert once per block.

        The IP's request counter is reset, so that the first request after the block
        starts a new window instead of blocking the IP again at once.
        """
        if await self.counters.set_flag(f"block:{ip}", rule, self.limits.ip_block_seconds):
            await self.counters.delete(f"ip:{ip}")
            detail = f"IP {ip} blocked for {self.limits.ip_block_seconds} s: {reason}"
            await self.alert(rule, AlertSeverity.WARNING, detail)

    async def unblock_ip(self, ip: str) -> bool:
        return await self.counters.delete(f"block:{ip}", f"ip:{ip}", f"login-ip-failures:{ip}") > 0

    async def _reject_if_blocked(self, ip: str) -> None:
        rule = await self.counters.flag(f"block:{ip}")
        if rule is not None:
            retry_after = max(await self.counters.ttl(f"block:{ip}"), 1)
            raise IpBlockedError(f"IP {ip} is blocked ({rule}) for another {retry_after} s", retry_after=retry_after)


class LoginGuard:
    """Locks an account after exactly `login_failures` failed logins within the failure window.

    Each login takes an attempt slot before it reaches the api, and a success frees all
    slots. So at most `login_failures` passwords are checked per window even when many
    attempts arrive at once, and the lock itself needs an admin to lift it.
    """

    def __init__(self, counters: WindowCounters, limits: GatewayLimits, requests: RequestGuard, alert: AlertSink) -> None:
        self.counters = counters
        self.limits = limits
        self.requests = requests
        self.alert = alert

    async def begin(self, username: str) -> None:
        """Take an attempt slot for `username`; raise when the account is locked or out of slots."""
        if await self.counters.flag(f"locked:{username}") is not None:
            raise AccountLockedError(f"account {username!r} is locked after repeated failed logins: an admin must unlock it")
        slots = await self.counters.hit(f"login-slots:{username}", self.limits.login_failure_window_seconds)
        if slots > self.limits.login_failures:
            raise AccountLockedError(
                f"account {username!r} has {self.limits.login_failures} login attempts in progress or failed: wait for them"
            )

    async def released(self, username: str) -> None:
        """Give back the slot of an attempt whose password was never checked (invalid body, api down)."""
        await self.counters.release(f"login-slots:{username}", self.limits.login_failure_window_seconds)

    async def succeeded(self, username: str) -> None:
        await self.counters.delete(f"login-slots:{username}", f"login-failures:{username}")

    async def failed(self, username: str, ip: str) -> None:
        """Count a failed login against the account and the IP; lock or block at the limits."""
        window = self.limits.login_failure_window_seconds
        failures = await self.counters.hit(f"login-failures:{username}", window)
        if failures >= self.limits.login_failures and await self.counters.set_flag(f"locked:{username}", ip):
            detail = f"account {username!r} locked after {failures} failed logins, the last from {ip}; pending review"
            await self.alert(RULE_ACCOUNT_LOCKED, AlertSeverity.WARNING, detail)

        ip_failures = await self.counters.hit(f"login-ip-failures:{ip}", window)
        if ip_failures >= self.limits.ip_login_failures:
            await self.requests.block_ip(ip, RULE_CREDENTIAL_STUFFING, f"{ip_failures} failed logins over several accounts")

    async def unlock(self, username: str) -> bool:
        """Lift the lock and forget the failures; return whether the account was locked."""
        locked = await self.counters.flag(f"locked:{username}") is not None
        await self.counters.delete(f"locked:{username}", f"login-slots:{username}", f"login-failures:{username}")
        return locked

    async def is_locked(self, username: str) -> bool:
        return await self.counters.flag(f"locked:{username}") is not None
