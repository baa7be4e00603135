"""Bets a load test places on chain: the seeded plan, and failed bets on a running platform."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from web3 import HTTPProvider, Web3

from wagerlab.chain.accounts import derived_account
from wagerlab.sim.actors import BET_PLACED_TOPIC
from wagerlab.sim.loadtest.bets import STAKE_MAX, STAKE_MIN, BetTraffic, PlannedBet, fund_bettors, plan_bets
from wagerlab.sim.loadtest.traffic import Fixture, LoadBettor, set_up
from wagerlab.sim.up import Platform, UpOptions, start_platform

ATTEMPTS = 12
ATTEMPTS_TIMEOUT_SECONDS = 120.0


def _fixture(bettors: int) -> Fixture:
    accounts = [LoadBettor(f"user{index}", f"token{index}", derived_account(1, "test", index)) for index in range(bettors)]
    return Fixture(market_ids=[1, 2, 3], bettors=accounts, outcome_counts={1: 2, 2: 3, 3: 2})


def test_plan_repeats_per_seed() -> None:
    fixture = _fixture(4)

    first = list(itertools.islice(plan_bets(fixture, 3), 50))
    again = list(itertools.islice(plan_bets(fixture, 3), 50))
    other = list(itertools.islice(plan_bets(fixture, 4), 50))

    assert first == again
    assert first != other
    assert [bet.seq for bet in first] == list(range(50))


def test_plan_stays_in_range() -> None:
    fixture = _fixture(3)

    bets = list(itertools.islice(plan_bets(fixture, 1), 500))

    assert {bet.bettor for bet in bets} == {0, 1, 2}
    assert {bet.market_id for bet in bets} == {1, 2, 3}
    for bet in bets:
        assert 0 <= bet.outcome < fixture.outcome_counts[bet.market_id]
        assert STAKE_MIN <= bet.stake <= STAKE_MAX
        assert isinstance(bet.stake, int)


def test_stop_ends_the_wait_between_bets() -> None:
    # An hour between bets: without an interruptible wait, the loop would outlast the 30 s bound below.
    traffic = BetTraffic(cast(Any, None), "http://127.0.0.1:9", _fixture(2), interval=3600.0)
    placed: list[int] = []

    async def place(clients: object, bet: PlannedBet, lock: asyncio.Lock) -> None:
        placed.append(bet.seq)

    traffic._place = place  # type: ignore[method-assign]

    async def place_then_stop() -> int:
        loop = asyncio.create_task(traffic._place_until_stopped(cast(Any, None)))
        while not placed:
            await asyncio.sleep(0.01)
        traffic._stop.set()  # what stop() does from the caller's thread
        tasks = await asyncio.wait_for(loop, timeout=30)
        await asyncio.gather(*tasks)
        return len(tasks)

    assert asyncio.run(place_then_stop()) == 1
    assert placed == [0]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    run_dir: Path = tmp_path_factory.mktemp("loadbets")
    started = start_platform(UpOptions(run_dir=run_dir, strategy="ttl"))
    yield started
    started.stop()


def _bet_placed_logs(platform: Platform) -> list[str]:
    w3 = Web3(HTTPProvider(platform.config.rpc_url, request_kwargs={"timeout": 60}))
    logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": platform.config.deployment.sportsbook, "topics": [BET_PLACED_TOPIC]})
    return [log["transactionHash"].to_0x_hex() for log in logs]


@pytest.mark.slow
def test_failed_bets_counted(platform: Platform) -> None:
    api = platform.api_urls[0]
    fixture = set_up(api, platform.config.admin_token, markets=2, bettors=3, seed=5)
    funded, gas_only, _without_gas = fixture.bettors
    fund_bettors(platform.config, api, [funded])
    fund_bettors(platform.config, api, [gas_only], deposit=0)

    traffic = BetTraffic(platform.config, api, fixture, interval=0.1, seed=5)
    traffic.start()
    deadline = time.monotonic() + ATTEMPTS_TIMEOUT_SECONDS
    while traffic.counts.attempted < ATTEMPTS and time.monotonic() < deadline:
        time.sleep(0.05)
    traffic.stop()
    summary = traffic.summary()
    planned = Counter(bet.bettor for bet in itertools.islice(plan_bets(fixture, 5), summary["bets_attempted"]))
    on_chain = _bet_placed_logs(platform)

    assert summary["bet_traffic_error"] is None
    assert summary["bets_attempted"] >= ATTEMPTS
    assert min(planned[index] for index in range(3)) >= 1, planned
    assert summary["bets_attempted"] == summary["bets_mined"] + summary["bets_failed"] + summary["bets_pending"]
    assert summary["bets_pending"] == 0
    assert summary["bets_mined"] == planned[0]
    assert summary["bet_failures"] == {"reverted": planned[1], "rejected": planned[2]}
    assert summary["bets_failed"] == planned[1] + planned[2]
    assert len(on_chain) == summary["bets_mined"]
    assert summary["bets_applied"] == summary["bets_mined"]
    assert summary["bets_in_db"] == summary["bets_mined"]
    assert summary["db_mismatch"] == 0
