"""Request floods: plain, and with a forged `X-Forwarded-For` on every request."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from pathlib import Path

import httpx

from wagerlab.platform.gateway.forensics import ForensicQuery, read_entries
from wagerlab.platform.gateway.guard import RULE_IP_FLOOD
from wagerlab.platform.gateway.limits import GatewayLimits
from wagerlab.sim.attacks.base import Attack, AttackContext, AttackResult, attacker_client, last_alert_id, wait_for_alerts

logger = logging.getLogger(__name__)

FLOOD_PATH = "/api/health"
"""The cheapest api route, so the flood is as fast as the gateway lets it be."""


async def _flood(client: httpx.AsyncClient, url: str, requests: int, concurrency: int, spoof: bool) -> Counter[int]:
    statuses: Counter[int] = Counter()
    rng = random.Random(requests)
    queue = iter(range(requests))

    async def worker() -> None:
        for _ in queue:
            headers = {"X-Forwarded-For": f"203.0.113.{rng.randrange(1, 255)}"} if spoof else {}
            try:
                statuses[(await client.get(url + FLOOD_PATH, headers=headers)).status_code] += 1
            except httpx.TransportError:
                statuses[0] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


class ApiFlood(Attack):
    """One address sends far more requests than its limit; it must be blocked, then let back in."""

    kind = "api_flood"
    options = {"requests": 600, "concurrency": 32, "source": 4}
    spoof = False

    async def run(self, context: AttackContext, options: dict[str, int], at: str) -> AttackResult:
        world, limits = context.world, GatewayLimits.from_overrides(context.config.security)
        source = f"127.0.0.{options['source']}"
        first_alert = await asyncio.to_thread(last_alert_id, context.engine)

        async with attacker_client(source) as attacker:
            statuses = await _flood(attacker, world.api_url, options["requests"], options["concurrency"], self.spoof)
            bystander = (await world.http.get(world.api_url + "/api/health")).status_code
            alerts = await wait_for_alerts(context.engine, first_alert, {RULE_IP_FLOOD})
            await asyncio.sleep(limits.ip_block_seconds + 1)
            after_block = (await attacker.get(world.api_url + "/api/health")).status_code

        checks = {
            "the flooding address was blocked": statuses[403] > 0,
            "other clients were served during the block": bystander == 200,
            "the block expired by itself": after_block == 200,
            **self.extra_checks(context, source, [alert.detail for alert in alerts if alert.rule == RULE_IP_FLOOD]),
        }
        rules = [alert.rule for alert in alerts]
        return AttackResult(
            kind=self.kind,
            at=at,
            detected=RULE_IP_FLOOD in rules,
            contained=all(checks.values()),
            detail=f"{options['requests']} requests from {source}: responses {dict(statuses)}",
            alerts=rules,
            checks=checks,
        )

    def extra_checks(self, context: AttackContext, source: str, flood_alerts: list[str]) -> dict[str, bool]:
        return {}


class XffSpoof(ApiFlood):
    """A flood whose every request claims another client in `X-Forwarded-For`.

    The attacker is not a trusted proxy, so the gateway must ignore the header, count every
    request against the attacker's real address, and log that address.
    """

    kind = "xff_spoof"
    spoof = True

    def extra_checks(self, context: AttackContext, source: str, flood_alerts: list[str]) -> dict[str, bool]:
        assert context.config.forensic_log_path is not None
        entries = [entry for entry in read_entries(Path(context.config.forensic_log_path)) if entry.get("peer") == source]
        return {
            "the alert names the real address": any(source in detail for detail in flood_alerts),
            "no forged address reached the alerts": not any("203.0.113." in detail for detail in flood_alerts),
            "the forensic log records the real address": bool(entries)
            and all(ForensicQuery(ip=source).matches(entry) for entry in entries),
        }
