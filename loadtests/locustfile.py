"""Fight-night odds traffic against the wagerlab api, in a closed and an open model.

Settings come from the environment, which `wagerlab loadtest` fills in:

- `WAGERLAB_TOKENS_FILE`: a JSON list of bearer tokens from `POST /api/login`.
- `WAGERLAB_MARKETS`: comma-separated market ids to read odds of.
- `WAGERLAB_RATE`: target odds requests per second, summed over all users.
- `WAGERLAB_USERS`: the number of users Locust runs (`--users`), to split the rate.

`ClosedModelUser` waits for each response before pacing the next request, so a slow server
lowers the rate it receives. `OpenModelUser` sends requests at fixed arrival times whether
or not earlier ones have returned, so a slow server builds up requests in flight instead.
Run one of them by name, for example:

    WAGERLAB_TOKENS_FILE=tokens.json WAGERLAB_MARKETS=1,2 WAGERLAB_RATE=833 WAGERLAB_USERS=50 \\
        locust -f loadtests/locustfile.py --headless --host http://127.0.0.1:8000 \\
        --users 50 --spawn-rate 50 --run-time 60s ClosedModelUser

Without `--headless` Locust serves its web UI; `--processes N` forks N local workers.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from pathlib import Path

import gevent
from locust import FastHttpUser, constant_throughput, task
from locust.runners import STATE_RUNNING, STATE_SPAWNING

logger = logging.getLogger(__name__)

ODDS_ROUTE = "/api/markets/[id]/odds"
"""The name every odds request is reported under, so Locust sums them in one row."""


class LoadTestSettingsError(RuntimeError):
    """A required WAGERLAB_* variable is missing or invalid."""


def _setting(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise LoadTestSettingsError(f"{name} is not set: run through `wagerlab loadtest`, or export it as the locustfile's docstring shows")
    return value


def _tokens() -> list[str]:
    tokens = json.loads(Path(_setting("WAGERLAB_TOKENS_FILE")).read_text())
    if not tokens:
        raise LoadTestSettingsError("WAGERLAB_TOKENS_FILE lists no tokens: log in at least one user first")
    return tokens


def _markets() -> list[int]:
    try:
        return [int(part) for part in _setting("WAGERLAB_MARKETS").split(",")]
    except ValueError as err:
        raise LoadTestSettingsError(f"WAGERLAB_MARKETS must be comma-separated integers: {err}") from err


def _rate_per_user() -> float:
    return float(_setting("WAGERLAB_RATE")) / max(1, int(os.environ.get("WAGERLAB_USERS", "1")))


class OddsReader(FastHttpUser):
    """Reads the odds of a random market with a random user's token."""

    abstract = True
    concurrency = 200
    """Connections one user may open, which the open model needs for requests in flight."""

    def on_start(self) -> None:
        self.tokens = _tokens()
        self.markets = _markets()

    def read_odds(self) -> None:
        market_id = random.choice(self.markets)
        headers = {"Authorization": f"Bearer {random.choice(self.tokens)}"}
        with self.client.get(f"/api/markets/{market_id}/odds", headers=headers, name=ODDS_ROUTE, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"odds of market {market_id}: status {response.status_code}: {response.text[:200]}")


class ClosedModelUser(OddsReader):
    """A closed model: each user sends its next request only after the previous response."""

    wait_time = constant_throughput(_rate_per_user() if os.environ.get("WAGERLAB_RATE") else 1.0)

    @task
    def odds(self) -> None:
        self.read_odds()


class OpenModelUser(OddsReader):
    """An open model: requests start on a fixed schedule at the user's share of the rate."""

    def wait_time(self) -> float:
        return 0.0

    @task
    def arrivals(self) -> None:
        interval = 1.0 / _rate_per_user()
        next_start = time.monotonic()
        # The schedule ends when the run time is up. Without this check the loop would go on
        # through Locust's --stop-timeout, sending past the run time that rates divide by.
        while self.environment.runner is None or self.environment.runner.state in (STATE_SPAWNING, STATE_RUNNING):
            gevent.spawn(self._read_logged)
            next_start += interval
            gevent.sleep(max(0.0, next_start - time.monotonic()))

    def _read_logged(self) -> None:
        try:
            self.read_odds()
        except Exception:
            # A greenlet's exception would otherwise vanish; the user keeps sending.
            logger.exception("an odds request of the open model failed")
