"""Quote misuse: another bettor's quote replayed, a tampered quote, and an expired quote.

Each is posted through the api, which must reject it with a 422 naming the quote field,
and sent straight to the chain, where the Sportsbook must revert it. No attempt may
create a bet.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import httpx
from eth_account import Account
from hexbytes import HexBytes

from wagerlab.chain.accounts import dev_roles
from wagerlab.chain.contracts import contract
from wagerlab.platform.gateway.proxy import RULE_INVALID_QUOTE
from wagerlab.sim.attacks.base import Attack, AttackContext, AttackError, AttackResult, attacker_client, last_alert_id, wait_for_alerts
from wagerlab.sim.wallet import TransactionReverted, Wallet

logger = logging.getLogger(__name__)

ATTACKER_ETHER = 10**17
ATTACKER_DEPOSIT = 10_000_000
STAKE = 1_000_000
RULE_REVERT_BURST = "revert_burst"


class QuoteReplay(Attack):
    """A funded, registered attacker misuses three quotes; detection needs both the gateway and the contract monitor."""

    kind = "quote_replay"
    options = {"source": 6}

    async def run(self, context: AttackContext, options: dict[str, int], at: str) -> AttackResult:
        world = context.world
        book = contract(context.w3, "Sportsbook", world.addresses["sportsbook"])
        next_bet_before = await asyncio.to_thread(book.functions.nextBetId().call)
        first_alert = await asyncio.to_thread(last_alert_id, context.engine)

        async with attacker_client(f"127.0.0.{options['source']}") as client:
            attacker = await _Attacker.onboard(context, client)
            checks: dict[str, bool] = {}
            outcomes: list[str] = []
            # Each quote is made right before its submission, because the expired case moves chain time.
            cases = [
                ("replayed", "quote.nonce", lambda: attacker.stolen_quote(context)),
                ("tampered", "quote.odds", attacker.tampered_quote),
                ("expired", "quote.expiry", lambda: attacker.expired_quote(context)),
            ]
            for case, expected_field, make_quote in cases:
                quote, signature = await make_quote()
                field, reverted = await attacker.submit(quote, signature)
                checks[f"{case} quote rejected by the api for {expected_field}"] = field == expected_field
                checks[f"{case} quote reverted by the contract"] = reverted is not None
                outcomes.append(f"{case}: api field {field}, contract {reverted}")

        checks["no bet was created"] = await asyncio.to_thread(book.functions.nextBetId().call) == next_bet_before
        alerts = await wait_for_alerts(context.engine, first_alert, {RULE_INVALID_QUOTE, RULE_REVERT_BURST})
        rules = [alert.rule for alert in alerts]
        return AttackResult(
            kind=self.kind,
            at=at,
            detected=RULE_INVALID_QUOTE in rules and RULE_REVERT_BURST in rules,
            contained=all(checks.values()),
            detail=f"three misused quotes from {attacker.wallet.address}: {'; '.join(outcomes)}",
            alerts=rules,
            checks=checks,
        )


class _Attacker:
    """A registered user with a funded book balance, acting through its own HTTP client."""

    def __init__(self, context: AttackContext, client: httpx.AsyncClient, wallet: Wallet, token: str) -> None:
        self.context = context
        self.world = context.world
        self.client = client
        self.wallet = wallet
        self.auth = {"Authorization": f"Bearer {token}"}

    @classmethod
    async def onboard(cls, context: AttackContext, client: httpx.AsyncClient) -> _Attacker:
        world = context.world
        account = Account.create()
        username, password = f"replayer-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
        body = {"username": username, "password": password, "address": account.address}
        if (response := await client.post(f"{world.api_url}/api/register", json=body)).status_code != 201:
            raise AttackError(f"registering the attacker returned {response.status_code}: {response.text}")
        token = (await client.post(f"{world.api_url}/api/login", json=body)).json()["token"]

        funder = Wallet(dev_roles().funder, world.rpc, world.chain_id)
        await funder.transfer_to_many([account.address], ATTACKER_ETHER)
        wallet = Wallet(account, world.rpc, world.chain_id)
        token_address, book = world.addresses["token"], world.addresses["sportsbook"]
        await wallet.transact("faucet", token_address, world.encode("WagerToken", "faucet", ATTACKER_DEPOSIT))
        await wallet.transact("approve", token_address, world.encode("WagerToken", "approve", book, ATTACKER_DEPOSIT))
        await wallet.transact("deposit", book, world.encode("Sportsbook", "deposit", ATTACKER_DEPOSIT))
        return cls(context, client, wallet, token)

    async def own_quote(self) -> tuple[dict[str, Any], str]:
        market_id = self.world.scenario.markets[0].market_id
        body = {"market_id": market_id, "outcome": 0, "stake": STAKE}
        response = await self.client.post(f"{self.world.api_url}/api/quotes", json=body, headers=self.auth)
        if response.status_code != 200:
            raise AttackError(f"requesting a quote returned {response.status_code}: {response.text}")
        issued = response.json()
        return issued["quote"], issued["signature"]

    async def stolen_quote(self, context: AttackContext) -> tuple[dict[str, Any], str]:
        """Return the quote and signature of the first bet on the chain, read from its transaction."""
        book = contract(context.w3, "Sportsbook", self.world.addresses["sportsbook"])
        logs = await asyncio.to_thread(book.events.BetPlaced().get_logs, from_block=context.config.deployment.start_block)
        if not logs:
            raise AttackError("quote_replay needs a placed bet to replay; run it after the betting phase")
        tx = await asyncio.to_thread(context.w3.eth.get_transaction, logs[0]["transactionHash"])
        _, args = book.decode_function_input(tx["input"])
        fields = ("bettor", "marketId", "outcome", "odds", "maxStake", "expiry", "nonce")
        names = ("bettor", "market_id", "outcome", "odds", "max_stake", "expiry", "nonce")
        quote = {name: args["quote"][field] for name, field in zip(names, fields, strict=True)}
        return quote, HexBytes(args["signature"]).to_0x_hex()

    async def tampered_quote(self) -> tuple[dict[str, Any], str]:
        quote, signature = await self.own_quote()
        return {**quote, "odds": quote["odds"] * 11 // 10}, signature

    async def expired_quote(self, context: AttackContext) -> tuple[dict[str, Any], str]:
        quote, signature = await self.own_quote()
        await self.world.rpc.call("evm_increaseTime", context.config.quote_ttl_seconds + 1)
        await self.world.rpc.call("evm_mine")
        return quote, signature

    async def submit(self, quote: dict[str, Any], signature: str) -> tuple[str | None, str | None]:
        """Post the bet through the api, then send it to the chain; return the api's field and the revert reason."""
        quote_tuple = tuple(quote[name] for name in ("bettor", "market_id", "outcome", "odds", "max_stake", "expiry", "nonce"))
        data = self.world.encode("Sportsbook", "placeBet", quote_tuple, STAKE, HexBytes(signature))
        book = self.world.addresses["sportsbook"]

        raw, _ = await self.wallet.sign(book, data)
        response = await self.client.post(f"{self.world.api_url}/api/bets", json={"raw_transaction": raw}, headers=self.auth)
        field = response.json().get("field") if response.status_code == 422 else None
        if response.status_code != 422:
            logger.error("the api accepted a misused quote %s: %d %s", quote["nonce"], response.status_code, response.text)
        try:
            await self.wallet.transact("misused placeBet", book, data)
        except TransactionReverted as err:
            return field, err.reason
        return field, None
