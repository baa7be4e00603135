"""Load-test traffic besides Locust's reads: markets and bettors set up first, then odds
changes and quotes while the load runs, and a once-a-second sample of the api's counters.

Bets placed on chain during the load run are in `wagerlab.sim.loadtest.bets`."""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount

from wagerlab.chain.accounts import derived_account
from wagerlab.odds import ONE_TOKEN, ODDS_SCALE

logger = logging.getLogger(__name__)

ODDS_ROUTE = "GET /api/markets/{market_id}/odds"
MARKET_OPEN_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class LoadBettor:
    """A registered, logged-in load-test user and the wallet key of its registered address."""

    username: str
    token: str
    account: LocalAccount


@dataclass
class Fixture:
    """The markets and logged-in bettors a load test reads and bets with."""

    market_ids: list[int]
    bettors: list[LoadBettor]
    outcome_counts: dict[int, int]

    @property
    def tokens(self) -> list[str]:
        """The bettors' bearer tokens, which Locust's users read odds with."""
        return [bettor.token for bettor in self.bettors]


def set_up(api_url: str, admin_token: str, *, markets: int, bettors: int, seed: int = 1) -> Fixture:
    """Create `markets` markets through the admin API and register and log in `bettors` users."""
    rng = random.Random(seed)
    outcome_counts: dict[int, int] = {}
    admin = {"Authorization": f"Bearer {admin_token}"}
    closes_at = int(time.time()) + MARKET_OPEN_SECONDS
    with httpx.Client(base_url=api_url, timeout=60) as client:
        for market_id in range(1, markets + 1):
            outcomes = rng.choice([2, 3])
            body = {
                "market_id": market_id,
                "name": f"bout {market_id}",
                "outcomes": [f"fighter {index}" for index in range(outcomes)],
                "closes_at": closes_at,
                "liability_cap": 100_000 * ONE_TOKEN,
                "odds": [_random_odds(rng) for _ in range(outcomes)],
            }
            client.post("/api/admin/markets", json=body, headers=admin).raise_for_status()
            outcome_counts[market_id] = outcomes
        registered = [_register(client, index, seed) for index in range(bettors)]
    return Fixture(list(range(1, markets + 1)), registered, outcome_counts)


def _register(client: httpx.Client, index: int, seed: int) -> LoadBettor:
    username = f"loadtest-{seed}-{index}"
    account = derived_account(seed, "loadtest-bettor", index)
    password = f"password of {username}"
    client.post("/api/register", json={"username": username, "password": password, "address": account.address}).raise_for_status()
    response = client.post("/api/login", json={"username": username, "password": password})
    response.raise_for_status()
    return LoadBettor(username, response.json()["token"], account)


def _random_odds(rng: random.Random) -> int:
    return ODDS_SCALE + rng.randrange(100_000, 4_000_000)


class BackgroundTraffic:
    """Odds changes and quotes sent from a thread while Locust reads odds.

    These quotes are never bet on. `BetTraffic` requests its own quotes for its bets.
    """

    def __init__(self, api_url: str, admin_token: str, fixture: Fixture, *, odds_interval: float, quote_interval: float) -> None:
        self.api_url = api_url
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        self.fixture = fixture
        self.odds_interval = odds_interval
        self.quote_interval = quote_interval
        self.odds_changes = 0
        self.quotes = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loadtest-traffic", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        rng = random.Random(7)
        next_change = time.monotonic()
        with httpx.Client(base_url=self.api_url, timeout=30) as client:
            while not self._stop.wait(self.quote_interval):
                market_id = rng.choice(self.fixture.market_ids)
                if time.monotonic() >= next_change:
                    next_change += self.odds_interval
                    odds = [_random_odds(rng) for _ in range(self.fixture.outcome_counts[market_id])]
                    self._send(client, "PUT", f"/api/admin/markets/{market_id}/odds", {"odds": odds}, self.admin)
                    self.odds_changes += 1
                token = rng.choice(self.fixture.tokens)
                body = {"market_id": market_id, "outcome": 0, "stake": ONE_TOKEN}
                self._send(client, "POST", "/api/quotes", body, {"Authorization": f"Bearer {token}"})
                self.quotes += 1

    def _send(self, client: httpx.Client, method: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        try:
            client.request(method, path, json=body, headers=headers).raise_for_status()
        except httpx.HTTPError as err:
            self.errors += 1
            if self.errors <= 10:
                logger.warning("background %s %s failed: %s", method, path, err)


@dataclass
class StatsSampler:
    """Samples `GET /api/stats` once a second in a thread; `samples` contains (seconds, stats) pairs."""

    api_url: str
    interval: float = 1.0
    samples: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loadtest-stats", daemon=True)
        self._started = time.monotonic()

    def start(self) -> None:
        self._started = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        with httpx.Client(base_url=self.api_url, timeout=10) as client:
            while True:
                try:
                    self.samples.append((time.monotonic() - self._started, client.get("/api/stats").json()))
                except httpx.HTTPError as err:
                    logger.warning("sampling /api/stats failed: %s", err)
                if self._stop.wait(self.interval):
                    return


def fetch_stats(api_url: str) -> dict[str, Any]:
    response = httpx.get(f"{api_url}/api/stats", timeout=30)
    response.raise_for_status()
    return response.json()
