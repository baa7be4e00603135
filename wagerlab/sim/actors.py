"""Simulated participants: bettors, the operator, the odds feed and the oracle reporters.

Each actor draws its decisions from its own random generator, seeded from the scenario
seed and the actor's name, and records them in the trace before acting.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3

from wagerlab.chain.accounts import derived_account
from wagerlab.sim.apiclient import ApiClient, ApiError
from wagerlab.sim.scenario import VOID_RESULT, MarketSpec, Scenario
from wagerlab.sim.trace import Trace
from wagerlab.sim.wallet import RpcClient, Wallet

logger = logging.getLogger(__name__)

VOID_OUTCOME = 255
BET_GAS = 400_000
BET_ATTEMPTS = 3
CREDIT_TIMEOUT_SECONDS = 60.0
MIN_ODDS = 1_010_000
BET_PLACED_TOPIC = "0x" + keccak(text="BetPlaced(uint256,address,uint256,uint8,uint256,uint256,uint256,uint256)").hex()


class ActorError(Exception):
    """An actor could not complete an action the scenario requires."""


@dataclass
class Counters:
    users: int = 0
    deposits: int = 0
    bets_placed: int = 0
    bet_retries: int = 0
    claims: int = 0
    odds_reads: int = 0
    odds_moves: int = 0
    reports: int = 0
    markets_created: int = 0
    markets_settled: int = 0
    claimers_done: int = 0


@dataclass
class World:
    """State shared by every actor of one run."""

    scenario: Scenario
    seed: int
    http: httpx.AsyncClient
    rpc: RpcClient
    api_url: str
    admin_token: str
    chain_id: int
    addresses: dict[str, str]
    encoders: dict[str, Any]
    trace: Trace = field(default_factory=Trace)
    counters: Counters = field(default_factory=Counters)
    bets_done: asyncio.Condition = field(default_factory=asyncio.Condition)

    def encode(self, contract: str, function: str, *args: Any) -> str:
        return self.encoders[contract].encode_abi(function, args=list(args))

    def admin_api(self) -> ApiClient:
        return ApiClient(self.http, self.api_url, token=self.admin_token)


def build_encoders(abis: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Create provider-less web3 contract objects, used only to encode calldata."""
    w3 = Web3()
    return {name: w3.eth.contract(abi=abi) for name, abi in abis.items()}


@dataclass(frozen=True)
class PlacedBet:
    seq: int
    bet_id: int
    market_id: int
    outcome: int
    stake: int


class Bettor:
    def __init__(self, world: World, index: int):
        self.world = world
        self.name = f"bettor-{index:04d}"
        self.rng = random.Random(f"{world.seed}:{self.name}")
        self.account: LocalAccount = derived_account(world.seed, "bettor", index)
        self.wallet = Wallet(self.account, world.rpc, world.chain_id)
        self.api = ApiClient(world.http, world.api_url)
        self.username = f"bettor{index:04d}"
        self.password = f"pw-{self.rng.getrandbits(64):016x}"
        self.placed: list[PlacedBet] = []

    async def onboard(self) -> None:
        """Register, log in, take faucet tokens and deposit them into the Sportsbook."""
        spec = self.world.scenario.bettors
        token, book = self.world.addresses["token"], self.world.addresses["sportsbook"]

        self.world.trace.record(self.name, "register", self.username, self.account.address)
        await self.api.register(self.username, self.password, self.account.address)
        await self.api.login(self.username, self.password)
        self.world.counters.users += 1

        self.world.trace.record(self.name, "deposit", spec.faucet, spec.deposit)
        await self.wallet.transact("faucet", token, self.world.encode("WagerToken", "faucet", spec.faucet))
        await self.wallet.transact("approve", token, self.world.encode("WagerToken", "approve", book, spec.deposit))
        await self.wallet.transact("deposit", book, self.world.encode("Sportsbook", "deposit", spec.deposit))
        await self._wait_for_credit(spec.deposit)
        self.world.counters.deposits += 1

    async def _wait_for_credit(self, amount: int) -> None:
        deadline = asyncio.get_running_loop().time() + CREDIT_TIMEOUT_SECONDS
        while True:
            balance = await self.api.balance()
            if balance["available"] >= amount:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise ActorError(
                    f"{self.name}: deposit of {amount} not credited after {CREDIT_TIMEOUT_SECONDS} s (balance {balance})"
                )
            await asyncio.sleep(0.1)

    async def place_bets(self, markets: tuple[MarketSpec, ...]) -> None:
        spec = self.world.scenario.bettors
        for seq in range(spec.bets_per_bettor):
            market = self.rng.choice(markets)
            outcome = self.rng.randrange(len(market.outcomes))
            stake = self.rng.randint(spec.stake_min, spec.stake_max)
            self.world.trace.record(self.name, "bet", seq, market.market_id, outcome, stake)

            for _ in range(spec.odds_reads_per_bet):
                await self.api.odds(market.market_id)
                self.world.counters.odds_reads += 1
            await self._place(seq, market.market_id, outcome, stake)

            async with self.world.bets_done:
                self.world.counters.bets_placed += 1
                self.world.bets_done.notify_all()

    async def _place(self, seq: int, market_id: int, outcome: int, stake: int) -> None:
        """Quote, sign and submit one bet; retry with a fresh quote when the chain rejects it."""
        book = self.world.addresses["sportsbook"]
        last_error = ""
        for attempt in range(1, BET_ATTEMPTS + 1):
            signed = await self.api.quote(market_id, outcome, stake)
            data = self.world.encode("Sportsbook", "placeBet", quote_tuple(signed["quote"]), stake, signed["signature"])
            raw, tx_hash = await self.wallet.sign(book, data, gas=BET_GAS)
            submitted = await self.api.place_bet(raw)
            status = await self.api.wait_for_transaction(submitted["tx_id"])
            if status["status"] == "mined":
                receipt = await self.world.rpc.receipt(tx_hash)
                self.placed.append(PlacedBet(seq, _bet_id_from_logs(receipt.logs), market_id, outcome, stake))
                return
            last_error = f"{status['status']}: {status.get('error')}"
            logger.warning("%s: bet %d attempt %d failed (%s), retrying", self.name, seq, attempt, last_error)
            self.world.counters.bet_retries += 1
        raise ActorError(f"{self.name}: bet {seq} on market {market_id} failed {BET_ATTEMPTS} times, last: {last_error}")

    async def claim_winnings(self) -> None:
        """Claim every bet the platform reports as won or voided, in the order they were placed."""
        statuses = {int(bet["bet_id"]): bet["status"] for bet in await self.api.bets()}
        book = self.world.addresses["sportsbook"]
        for bet in self.placed:
            status = statuses.get(bet.bet_id)
            if status is None:
                raise ActorError(f"{self.name}: bet {bet.bet_id} is missing from GET /api/bets")
            if status not in ("won", "voided"):
                continue
            self.world.trace.record(self.name, "claim", bet.seq)
            raw, _ = await self.wallet.sign(book, self.world.encode("Sportsbook", "claim", bet.bet_id))
            submitted = await self.api.claim(raw)
            result = await self.api.wait_for_transaction(submitted["tx_id"])
            if result["status"] != "mined":
                raise ActorError(f"{self.name}: claim of bet {bet.bet_id} ended {result['status']}: {result.get('error')}")
            self.world.counters.claims += 1
        self.world.counters.claimers_done += 1


def quote_tuple(quote: dict[str, Any]) -> tuple[str, int, int, int, int, int, int]:
    """Convert a quote of `POST /api/quotes` into the `Quote` struct argument of `placeBet`."""
    return (
        quote["bettor"],
        int(quote["market_id"]),
        int(quote["outcome"]),
        int(quote["odds"]),
        int(quote["max_stake"]),
        int(quote["expiry"]),
        int(quote["nonce"]),
    )


def _bet_id_from_logs(logs: list[dict[str, Any]]) -> int:
    for log in logs:
        if log["topics"] and log["topics"][0].lower() == BET_PLACED_TOPIC:
            return int(log["topics"][1], 16)
    raise ActorError("the mined placeBet transaction has no BetPlaced log")


class Operator:
    """Creates markets and closes them when bouts start, through the admin API."""

    name = "operator"

    def __init__(self, world: World):
        self.world = world
        self.api = world.admin_api()

    async def create_markets(self, closes_at: int) -> None:
        for market in self.world.scenario.markets:
            self.world.trace.record(self.name, "create_market", market.market_id, list(market.odds))
            await self.api.request(
                "POST",
                "/api/admin/markets",
                {
                    "market_id": market.market_id,
                    "name": market.name,
                    "outcomes": list(market.outcomes),
                    "closes_at": closes_at,
                    "liability_cap": market.liability_cap,
                    "odds": list(market.odds),
                },
            )
            self.world.counters.markets_created += 1

    async def close_market(self, market_id: int) -> None:
        self.world.trace.record(self.name, "close_market", market_id)
        await self.api.request("POST", f"/api/admin/markets/{market_id}/close")


class OddsFeed:
    """Moves odds while bets arrive, spreading its moves evenly over the betting phase."""

    name = "odds-feed"

    def __init__(self, world: World):
        self.world = world
        self.rng = random.Random(f"{world.seed}:{self.name}")
        self.api = world.admin_api()
        self.current = {market.market_id: list(market.odds) for market in world.scenario.markets}

    async def run(self, total_bets: int) -> None:
        spec = self.world.scenario.odds_feed
        for move in range(spec.moves):
            threshold = (move + 1) * total_bets // (spec.moves + 1)
            async with self.world.bets_done:
                await self.world.bets_done.wait_for(lambda: self.world.counters.bets_placed >= threshold)
            await self._move(spec.max_change_bps)

    async def _move(self, max_change_bps: int) -> None:
        market_id = self.rng.choice(sorted(self.current))
        odds = []
        for value in self.current[market_id]:
            change_bps = self.rng.randint(-max_change_bps, max_change_bps)
            odds.append(max(MIN_ODDS, value * (10_000 + change_bps) // 10_000))
        self.current[market_id] = odds
        self.world.trace.record(self.name, "odds", market_id, odds)
        try:
            await self.api.request("PUT", f"/api/admin/markets/{market_id}/odds", {"odds": odds})
        except ApiError as err:
            raise ActorError(f"odds feed: moving odds of market {market_id} failed: {err}") from err
        self.world.counters.odds_moves += 1


class Reporters:
    """The oracle's reporters, voting on results directly on chain."""

    name = "oracle"

    def __init__(self, world: World, accounts: tuple[LocalAccount, ...]):
        self.world = world
        self.rng = random.Random(f"{world.seed}:{self.name}")
        self.wallets = [Wallet(account, world.rpc, world.chain_id) for account in accounts]

    def draw_result(self, market: MarketSpec) -> int:
        """Return the market's result: its fixed outcome, a seeded draw, or VOID_OUTCOME."""
        if market.result == VOID_RESULT:
            return VOID_OUTCOME
        if market.result == "random":
            return self.rng.randrange(len(market.outcomes))
        return int(market.result)

    async def report(self, market: MarketSpec, outcome: int, *, dissent: bool) -> None:
        """Vote `outcome` with a quorum of reporters; with dissent, one reporter first votes wrong."""
        votes: list[tuple[Wallet, int]] = []
        if dissent:
            wrong = 0 if outcome == VOID_OUTCOME else (outcome + 1) % len(market.outcomes)
            votes.append((self.wallets[-1], wrong))
        votes += [(wallet, outcome) for wallet in self.wallets[:2]]

        oracle = self.world.addresses["oracle"]
        for wallet, vote in votes:
            self.world.trace.record(self.name, "report", wallet.address, market.market_id, vote)
            data = self.world.encode("ResultOracle", "submitResult", market.market_id, vote)
            await wallet.transact("submitResult", oracle, data)
            self.world.counters.reports += 1
        self.world.counters.markets_settled += 1
