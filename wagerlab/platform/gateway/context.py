"""The state the gateway's handlers share, kept on `app.state.gateway`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
from sqlalchemy.engine import Engine
from starlette.requests import Request

from wagerlab.platform.alerts import raise_alert
from wagerlab.platform.config import PlatformConfig
from wagerlab.platform.db import AlertSeverity
from wagerlab.platform.gateway.client_ip import IpNetwork
from wagerlab.platform.gateway.counters import WindowCounters
from wagerlab.platform.gateway.forensics import ForensicLog
from wagerlab.platform.gateway.guard import LoginGuard, RequestGuard
from wagerlab.platform.gateway.limits import GatewayLimits
from wagerlab.platform.gateway.retry import RetryQueue
from wagerlab.platform.security import ContractMonitor

ALERT_SOURCE = "gateway"


@dataclass
class Upstream:
    """A service the gateway routes a path prefix to."""

    name: str
    prefix: str
    client: httpx.AsyncClient
    admin_only: bool = False
    """Paths only the admin token may use, for services without their own authentication."""


@dataclass
class GatewayContext:
    config: PlatformConfig
    engine: Engine
    limits: GatewayLimits
    trusted_proxies: tuple[IpNetwork, ...]
    counters: WindowCounters
    requests: RequestGuard
    logins: LoginGuard
    forensics: ForensicLog
    upstreams: list[Upstream]
    retries: RetryQueue
    monitor: ContractMonitor | None = None
    unlimited_requests: int = 0
    """Requests let through without limits since Redis became unreachable; 0 while it is reachable."""

    def upstream_for(self, path: str) -> Upstream | None:
        for upstream in self.upstreams:
            if path == upstream.prefix or path.startswith(upstream.prefix + "/"):
                return upstream
        return None

    async def alert(self, rule: str, severity: AlertSeverity, detail: str) -> None:
        await asyncio.to_thread(raise_alert, self.engine, rule, severity, ALERT_SOURCE, detail)


def gateway_context(request: Request) -> GatewayContext:
    return request.app.state.gateway
