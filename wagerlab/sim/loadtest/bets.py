"""Bets placed on chain during a load test, the way a real bettor places them.

Set-up gives each load-test bettor gas from a dev account, takes WagerToken from the
faucet, deposits it into the Sportsbook and waits until the deposit monitor has credited
it. While the load runs, `BetTraffic` requests a quote, signs `placeBet` with the bettor's
key and submits it through `POST /api/bets` at a fixed interval. Each bet's status is
polled in its own task, so the loop that places bets never waits for the chain. At the
end it checks that every mined bet reached the platform's database.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from wagerlab.chain.accounts import dev_roles
from wagerlab.chain.compiler import load_artifacts
from wagerlab.odds import ONE_TOKEN
from wagerlab.platform.config import PlatformConfig
from wagerlab.sim.actors import BET_GAS, build_encoders, quote_tuple
from wagerlab.sim.apiclient import ApiClient, ApiError
from wagerlab.sim.loadtest.traffic import Fixture, LoadBettor
from wagerlab.sim.runner import KEEPALIVE_EXPIRY_SECONDS
from wagerlab.sim.wallet import RpcClient, RpcError, TransactionReverted, Wallet

logger = logging.getLogger(__name__)

BETTOR_ETHER = 10 * 10**18
"""Gas money of each bettor. A bet costs at most BET_GAS * MAX_FEE_PER_GAS (0.008 ETH), so
this pays for about 1,250 bets."""
BETTOR_DEPOSIT = 1_000 * ONE_TOKEN
"""Tokens each bettor takes from the faucet and deposits. Stakes are 1 to 10 tokens."""
STAKE_MIN = ONE_TOKEN
STAKE_MAX = 10 * ONE_TOKEN
CREDIT_TIMEOUT_SECONDS = 60.0
STATUS_TIMEOUT_SECONDS = 60.0
"""How long a placed bet's status is polled before the bet counts as pending."""
DB_CHECK_TIMEOUT_SECONDS = 60.0
"""How long the final check waits for the monitors to store every mined bet."""
STOP_TIMEOUT_SECONDS = STATUS_TIMEOUT_SECONDS + DB_CHECK_TIMEOUT_SECONDS + 30.0
POLL_INTERVAL_SECONDS = 0.2
LOGGED_FAILURES = 10
"""Failed bets logged one by one; later ones are only counted."""


class BetSetupError(Exception):
    """A load-test bettor could not be funded: a transaction failed or the deposit was never credited."""


@dataclass
class _Clients:
    """The HTTP, JSON-RPC and calldata clients that the bettors' wallets and api calls share."""

    config: PlatformConfig
    api_url: str
    http: httpx.AsyncClient
    rpc: RpcClient
    encoders: dict[str, Any]

    @classmethod
    def connect(cls, config: PlatformConfig, api_url: str, http: httpx.AsyncClient) -> _Clients:
        abis = {name: artifact.abi for name, artifact in load_artifacts().items()}
        return cls(config, api_url, http, RpcClient(config.rpc_url, http), build_encoders(abis))

    def wallet(self, bettor: LoadBettor) -> Wallet:
        return Wallet(bettor.account, self.rpc, self.config.deployment.chain_id)

    def api(self, bettor: LoadBettor) -> ApiClient:
        return ApiClient(self.http, self.api_url, token=bettor.token)

    def encode(self, contract: str, function: str, *args: Any) -> str:
        return self.encoders[contract].encode_abi(function, args=list(args))


def _http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=60, limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS))


def fund_bettors(config: PlatformConfig, api_url: str, bettors: list[LoadBettor], *, deposit: int = BETTOR_DEPOSIT) -> None:
    """Send each bettor gas ETH from the funder dev account, then deposit `deposit` tokens for each.

    With `deposit` 0 the bettors get gas only, so their bets revert on chain. Returns once
    the platform shows every deposit in `GET /api/balance`.
    """
    asyncio.run(_fund(config, api_url, bettors, deposit))


async def _fund(config: PlatformConfig, api_url: str, bettors: list[LoadBettor], deposit: int) -> None:
    async with _http_client() as http:
        clients = _Clients.connect(config, api_url, http)
        funder = Wallet(dev_roles().funder, clients.rpc, config.deployment.chain_id)
        try:
            await funder.transfer_to_many([bettor.account.address for bettor in bettors], BETTOR_ETHER)
            if deposit > 0:
                await asyncio.gather(*(_deposit(clients, bettor, deposit) for bettor in bettors))
        except (TransactionReverted, RpcError, ApiError, TimeoutError) as err:
            raise BetSetupError(f"funding the load-test bettors failed: {err}") from err
    logger.info("funded %d load-test bettors with %d wei of gas and %d token units each", len(bettors), BETTOR_ETHER, deposit)


async def _deposit(clients: _Clients, bettor: LoadBettor, amount: int) -> None:
    """Take `amount` from the faucet, approve the Sportsbook and deposit, as a bettor's wallet does."""
    wallet = clients.wallet(bettor)
    token, book = clients.config.deployment.token, clients.config.deployment.sportsbook
    await wallet.transact("faucet", token, clients.encode("WagerToken", "faucet", amount))
    await wallet.transact("approve", token, clients.encode("WagerToken", "approve", book, amount))
    await wallet.transact("deposit", book, clients.encode("Sportsbook", "deposit", amount))
    await _wait_for_credit(clients.api(bettor), bettor.username, amount)


async def _wait_for_credit(api: ApiClient, username: str, amount: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CREDIT_TIMEOUT_SECONDS
    while True:
        balance = await api.balance()
        if balance["available"] >= amount:
            return
        if loop.time() > deadline:
            raise BetSetupError(
                f"the deposit of {amount} token units by {username} was not credited within {CREDIT_TIMEOUT_SECONDS:.0f} s "
                f"(balance {balance}); check the monitors' log in the run directory"
            )
        await asyncio.sleep(POLL_INTERVAL_SECONDS)


@dataclass(frozen=True)
class PlannedBet:
    """One bet the traffic will try to place; `bettor` indexes the fixture's bettors."""

    seq: int
    bettor: int
    market_id: int
    outcome: int
    stake: int


def plan_bets(fixture: Fixture, seed: int) -> Iterator[PlannedBet]:
    """Yield an endless sequence of bets on the fixture's markets, the same for the same seed."""
    rng = random.Random(f"{seed}:loadtest-bets")
    for seq in itertools.count():
        market_id = rng.choice(fixture.market_ids)
        yield PlannedBet(
            seq=seq,
            bettor=rng.randrange(len(fixture.bettors)),
            market_id=market_id,
            outcome=rng.randrange(fixture.outcome_counts[market_id]),
            stake=rng.randint(STAKE_MIN, STAKE_MAX),
        )


@dataclass
class BetCounts:
    """Outcomes of the bets `BetTraffic` tried to place. Once it has stopped, attempted
    equals mined + failed + pending."""

    attempted: int = 0
    placed: int = 0
    """Accepted by `POST /api/bets`, which relays them to the chain."""
    mined: int = 0
    failed: int = 0
    pending: int = 0
    """Placed, but no final status was seen within STATUS_TIMEOUT_SECONDS."""
    failures: Counter[str] = field(default_factory=Counter)
    """Failed bets by cause: quote_rejected, submit_rejected, request_failed (no response),
    reverted (mined with status 0) and rejected (refused by the node)."""


class BetTraffic:
    """Bets quoted, signed and submitted through the api from a thread while Locust reads odds.

    Bets come from `plan_bets`, so every run of a seed draws the same sequence of
    (bettor, market, outcome, stake). How much of it a run places depends on its duration.
    """

    def __init__(self, config: PlatformConfig, api_url: str, fixture: Fixture, *, interval: float, seed: int = 1) -> None:
        self.config = config
        self.api_url = api_url
        self.fixture = fixture
        self.interval = interval
        self.counts = BetCounts()
        self.applied = 0
        """BetPlaced events the bets monitor applied while the traffic ran."""
        self.missing_in_db: list[str] = []
        """Hashes of mined bets that `GET /api/bets` did not list by the end of the check."""
        self.unexpected_in_db: list[str] = []
        """Hashes of bets `GET /api/bets` listed that this traffic neither saw mined nor left unresolved."""
        self.in_db = 0
        self.error: str | None = None
        self._plan = plan_bets(fixture, seed)
        self._mined: set[str] = set()
        self._unresolved: set[str] = set()
        """Hashes of bets that may or may not be on chain: pending, or submitted without a response."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loadtest-bets", daemon=True)

    def start(self) -> None:
        logger.info("placing a bet every %s s with %d bettors", self.interval, len(self.fixture.bettors))
        self._thread.start()

    def stop(self) -> None:
        """Stop placing bets, then wait for the placed bets' statuses and the database check."""
        self._stop.set()
        self._thread.join(timeout=STOP_TIMEOUT_SECONDS)
        if self._thread.is_alive():
            self.error = f"the bet traffic did not finish within {STOP_TIMEOUT_SECONDS:.0f} s of the stop"
            logger.error("%s; its counts are incomplete", self.error)
        logger.info("bet traffic stopped: %s", self.summary())

    def summary(self) -> dict[str, Any]:
        """Return the counts and the database check as flat keys of loadtest.json's `background`."""
        counts = self.counts
        return {
            "bet_interval_s": self.interval,
            "bets_attempted": counts.attempted,
            "bets_placed": counts.placed,
            "bets_mined": counts.mined,
            "bets_failed": counts.failed,
            "bets_pending": counts.pending,
            "bet_failures": dict(sorted(counts.failures.items())),
            "bets_applied": self.applied,
            "bets_in_db": self.in_db,
            "bets_missing_in_db": len(self.missing_in_db),
            "bets_unexpected_in_db": len(self.unexpected_in_db),
            "db_mismatch": len(self.missing_in_db) + len(self.unexpected_in_db),
            "missing_tx_hashes": self.missing_in_db[:LOGGED_FAILURES],
            "bet_traffic_error": self.error,
        }

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as err:
            # The load run goes on without bets; loadtest.json carries the error.
            logger.exception("the bet traffic stopped early")
            self.error = f"{type(err).__name__}: {err}"

    async def _main(self) -> None:
        async with _http_client() as http:
            clients = _Clients.connect(self.config, self.api_url, http)
            applied_before = await self._bets_applied(http)
            tasks = await self._place_until_stopped(clients)
            await asyncio.gather(*tasks)
            await self._check_database(clients)
            self.applied = await self._bets_applied(http) - applied_before

    async def _place_until_stopped(self, clients: _Clients) -> list[asyncio.Task[None]]:
        """Start one task per bet every `interval` seconds; a late loop does not catch up in a burst."""
        locks = [asyncio.Lock() for _ in self.fixture.bettors]
        loop = asyncio.get_running_loop()
        tasks: list[asyncio.Task[None]] = []
        next_at = loop.time()
        while not self._stop.is_set():
            bet = next(self._plan)
            tasks.append(asyncio.create_task(self._place(clients, bet, locks[bet.bettor])))
            next_at = max(next_at + self.interval, loop.time())
            # Waits in a worker thread on the stop event, so that stop() ends the wait at once instead of after the interval.
            await asyncio.to_thread(self._stop.wait, next_at - loop.time())
        return tasks

    async def _place(self, clients: _Clients, bet: PlannedBet, lock: asyncio.Lock) -> None:
        """Quote, sign and submit `bet`, then poll its transaction until it is final."""
        self.counts.attempted += 1
        bettor = self.fixture.bettors[bet.bettor]
        api = clients.api(bettor)
        # One bet per bettor at a time between signing and relaying: the wallet takes the
        # nonce from the node's pending count, which includes a bet only once it is relayed.
        async with lock:
            try:
                signed = await api.quote(bet.market_id, bet.outcome, bet.stake)
            except ApiError as err:
                self._fail(bet, "quote_rejected", err)
                return
            except httpx.HTTPError as err:
                self._fail(bet, "request_failed", err)
                return
            data = clients.encode("Sportsbook", "placeBet", quote_tuple(signed["quote"]), bet.stake, signed["signature"])
            try:
                raw, tx_hash = await clients.wallet(bettor).sign(clients.config.deployment.sportsbook, data, gas=BET_GAS)
            except (httpx.HTTPError, RpcError) as err:
                self._fail(bet, "request_failed", err)
                return
            try:
                submitted = await api.place_bet(raw)
            except ApiError as err:
                self._fail(bet, "submit_rejected", err)
                return
            except httpx.HTTPError as err:
                # The api may have relayed the bet before the connection failed.
                self._unresolved.add(tx_hash.lower())
                self._fail(bet, "request_failed", err)
                return
        self.counts.placed += 1
        await self._follow(api, bet, submitted["tx_id"], tx_hash.lower())

    async def _follow(self, api: ApiClient, bet: PlannedBet, tx_id: str, tx_hash: str) -> None:
        try:
            status = await api.wait_for_transaction(tx_id, timeout=STATUS_TIMEOUT_SECONDS)
        except (TimeoutError, ApiError, httpx.HTTPError) as err:
            logger.warning("bet %d (tx %s) has no final status: %r; counted as pending", bet.seq, tx_id, err)
            self.counts.pending += 1
            self._unresolved.add(tx_hash)
            return
        if status["status"] == "mined":
            self.counts.mined += 1
            self._mined.add(tx_hash)
        else:
            self._fail(bet, status["status"], status.get("error"))

    def _fail(self, bet: PlannedBet, cause: str, error: object) -> None:
        self.counts.failed += 1
        self.counts.failures[cause] += 1
        if self.counts.failed <= LOGGED_FAILURES:
            username = self.fixture.bettors[bet.bettor].username
            logger.warning("bet %d of %s on market %d failed (%s): %s", bet.seq, username, bet.market_id, cause, error)

    async def _check_database(self, clients: _Clients) -> None:
        """Wait until `GET /api/bets` lists every mined bet; record the mined bets it misses and the extra ones."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DB_CHECK_TIMEOUT_SECONDS
        while True:
            stored = await self._stored_hashes(clients)
            missing = self._mined - stored
            if not missing or loop.time() > deadline:
                break
            await asyncio.sleep(POLL_INTERVAL_SECONDS)
        self.in_db = len(self._mined & stored)
        self.missing_in_db = sorted(missing)
        self.unexpected_in_db = sorted(stored - self._mined - self._unresolved)
        if missing:
            logger.error("%d mined bets are not in GET /api/bets after %.0f s, e.g. %s", len(missing), DB_CHECK_TIMEOUT_SECONDS, self.missing_in_db[0])

    async def _stored_hashes(self, clients: _Clients) -> set[str]:
        stored: set[str] = set()
        for bettor in self.fixture.bettors:
            stored.update(str(bet["tx_hash"]).lower() for bet in await clients.api(bettor).bets())
        return stored

    async def _bets_applied(self, http: httpx.AsyncClient) -> int:
        """Return the bets monitor's count of applied events from the monitors' health endpoint."""
        response = await http.get(f"{self.config.monitors_url}/health")
        # The endpoint returns 503 with the same body while a monitor is unhealthy.
        return int(response.json()["monitors"]["bets"]["events_applied"])
