"""Attacks on logins: brute force against one account and credential stuffing over many."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import Counter

import httpx
from eth_account import Account

from wagerlab.platform.gateway.guard import RULE_ACCOUNT_LOCKED, RULE_CREDENTIAL_STUFFING
from wagerlab.platform.gateway.limits import GatewayLimits
from wagerlab.sim.attacks.base import Attack, AttackContext, AttackError, AttackResult, attacker_client, last_alert_id, wait_for_alerts

logger = logging.getLogger(__name__)

COMMON_PASSWORDS = ("123456", "password", "qwerty123", "letmein1", "iloveyou", "dragon12", "football", "monkey12")


async def _login(client: httpx.AsyncClient, url: str, username: str, password: str) -> httpx.Response:
    return await client.post(f"{url}/api/login", json={"username": username, "password": password})


async def _register_victim(context: AttackContext, username: str, password: str) -> None:
    world = context.world
    body = {"username": username, "password": password, "address": Account.create().address}
    response = await world.http.post(f"{world.api_url}/api/register", json=body)
    if response.status_code != 201:
        raise AttackError(f"registering the victim {username!r} returned {response.status_code}: {response.text}")


class BruteForce(Attack):
    """Many concurrent password guesses for one account from one attacker address."""

    kind = "brute_force"
    options = {"attempts": 40, "source": 2}

    async def run(self, context: AttackContext, options: dict[str, int], at: str) -> AttackResult:
        world, limit = context.world, GatewayLimits.from_overrides(context.config.security).login_failures
        username, password = f"victim-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
        await _register_victim(context, username, password)
        first_alert = await asyncio.to_thread(last_alert_id, context.engine)

        async with attacker_client(f"127.0.0.{options['source']}") as attacker:
            guesses = [_login(attacker, world.api_url, username, f"guess-{index}") for index in range(options["attempts"])]
            statuses = Counter(response.status_code for response in await asyncio.gather(*guesses))
        owner_while_locked = (await _login(world.http, world.api_url, username, password)).status_code
        alerts = await wait_for_alerts(context.engine, first_alert, {RULE_ACCOUNT_LOCKED})
        admin = {"Authorization": f"Bearer {world.admin_token}"}
        unlock = await world.http.post(f"{world.api_url}/gateway/admin/accounts/{username}/unlock", headers=admin)
        owner_after_unlock = (await _login(world.http, world.api_url, username, password)).status_code

        checks = {
            f"exactly {limit} guesses checked": statuses[401] == limit,
            "the other guesses rejected as locked": statuses[423] == options["attempts"] - limit,
            "owner locked out until review": owner_while_locked == 423,
            "admin unlock restores the owner": unlock.status_code == 200 and owner_after_unlock == 200,
        }
        rules = [alert.rule for alert in alerts]
        return AttackResult(
            kind=self.kind,
            at=at,
            detected=RULE_ACCOUNT_LOCKED in rules,
            contained=all(checks.values()),
            detail=f"{options['attempts']} concurrent guesses for {username!r}: responses {dict(statuses)}",
            alerts=rules,
            checks=checks,
        )


class CredentialStuffing(Attack):
    """Common passwords tried once each against many accounts from one attacker address."""

    kind = "credential_stuffing"
    options = {"accounts": 40, "source": 3}

    async def run(self, context: AttackContext, options: dict[str, int], at: str) -> AttackResult:
        world = context.world
        known = [username for username, _ in context.bettor_logins]
        targets = (known + [f"user{index:04d}" for index in range(options["accounts"])])[: options["accounts"]]
        first_alert = await asyncio.to_thread(last_alert_id, context.engine)

        statuses: Counter[int] = Counter()
        async with attacker_client(f"127.0.0.{options['source']}") as attacker:
            for index, username in enumerate(targets):
                response = await _login(attacker, world.api_url, username, COMMON_PASSWORDS[index % len(COMMON_PASSWORDS)])
                statuses[response.status_code] += 1
        alerts = await wait_for_alerts(context.engine, first_alert, {RULE_CREDENTIAL_STUFFING})
        bettor_login = await _bettor_can_log_in(context)

        checks = {
            "no guessed login succeeded": statuses[200] == 0,
            "the attacker's IP was blocked": statuses[403] > 0,
            "bettors from other addresses still log in": bettor_login,
        }
        rules = [alert.rule for alert in alerts]
        return AttackResult(
            kind=self.kind,
            at=at,
            detected=RULE_CREDENTIAL_STUFFING in rules,
            contained=all(checks.values()),
            detail=f"{len(targets)} accounts tried once each: responses {dict(statuses)}",
            alerts=rules,
            checks=checks,
        )


async def _bettor_can_log_in(context: AttackContext) -> bool:
    if not context.bettor_logins:
        return True
    username, password = context.bettor_logins[0]
    return (await _login(context.world.http, context.world.api_url, username, password)).status_code == 200
