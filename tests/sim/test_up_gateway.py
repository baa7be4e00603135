"""`wagerlab up` with a gateway per api node, and the supervisor that starts dead services again.

The platform tests use Redis database 8 at 127.0.0.1:6379, which this file owns, and are
skipped when that server is unreachable.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from web3 import HTTPProvider, Web3

from wagerlab.chain.compiler import load_artifacts
from wagerlab.odds import ONE_TOKEN
from wagerlab.sim.actors import BET_GAS, BET_PLACED_TOPIC, build_encoders, quote_tuple
from wagerlab.sim.apiclient import ApiClient
from wagerlab.sim.loadtest.bets import fund_bettors
from wagerlab.sim.loadtest.traffic import Fixture, LoadBettor, set_up
from wagerlab.sim.stack import ManagedProcess, Stack, StackError
from wagerlab.sim.up import MAX_RESTARTS, RESTART_WINDOW_SECONDS, Platform, Supervisor, UpOptions, start_platform
from wagerlab.sim.wallet import RpcClient, Wallet

REDIS_URL = "redis://127.0.0.1:6379/8"
STAKE = 5 * ONE_TOKEN
EXIT_TIMEOUT_SECONDS = 15.0
SENT_TIMEOUT_SECONDS = 90.0


def _redis_reachable() -> bool:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        return True
    except redis.ConnectionError:
        return False


def _wait_until_exited(process: ManagedProcess) -> int:
    deadline = time.monotonic() + EXIT_TIMEOUT_SECONDS
    while (code := process.exit_code()) is None:
        assert time.monotonic() < deadline, f"{process.name} did not exit within {EXIT_TIMEOUT_SECONDS} s"
        time.sleep(0.05)
    return code


def _process(platform: Platform, name: str) -> ManagedProcess:
    return next(process for process in platform.stack.processes if process.name == name)


def _kill(platform: Platform, name: str) -> None:
    """Kill one process of this platform with SIGKILL from outside, as an operator or the OOM killer would."""
    process = _process(platform, name)
    assert process.pid is not None
    os.kill(process.pid, signal.SIGKILL)
    assert _wait_until_exited(process) == -signal.SIGKILL


# Supervisor on short-lived processes: `python -m wagerlab no-such-command` exits with code 2.


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_supervisor_restarts_exited_service(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    service = stack.spawn("chainapi", ["no-such-command"])
    first_pid = service.pid
    _wait_until_exited(service)

    started = Supervisor(stack).check()

    assert started == ["chainapi"]
    assert service.pid != first_pid
    _wait_until_exited(service)
    stack.stop()


def test_supervisor_stops_on_dead_node(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    node = stack.spawn("node", ["no-such-command"])
    _wait_until_exited(node)

    with pytest.raises(StackError, match="node exited with code 2"):
        Supervisor(stack).check()


def test_supervisor_gives_up_on_crash_loop(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    service = stack.spawn("stream", ["no-such-command"])
    clock = FakeClock()
    supervisor = Supervisor(stack, clock=clock)

    for _ in range(MAX_RESTARTS):
        _wait_until_exited(service)
        assert supervisor.check() == ["stream"]
        clock.now += 1.0
    _wait_until_exited(service)

    with pytest.raises(StackError, match=f"stream exited with code 2 after {MAX_RESTARTS} restarts"):
        supervisor.check()


def test_supervisor_forgets_old_restarts(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    service = stack.spawn("stream", ["no-such-command"])
    clock = FakeClock()
    supervisor = Supervisor(stack, clock=clock)

    for _ in range(MAX_RESTARTS):
        _wait_until_exited(service)
        assert supervisor.check() == ["stream"]
    clock.now += RESTART_WINDOW_SECONDS + 1
    _wait_until_exited(service)

    assert supervisor.check() == ["stream"]
    _wait_until_exited(service)
    stack.stop()


# A whole platform: two api nodes, each behind its own gateway.


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    if not _redis_reachable():
        pytest.skip(f"no Redis at {REDIS_URL}: several nodes need a real Redis server")
    run_dir: Path = tmp_path_factory.mktemp("upgateway")
    started = start_platform(UpOptions(run_dir=run_dir, nodes=2, redis_url=REDIS_URL, strategy="ttl"))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def fixture(platform: Platform) -> Fixture:
    """One market and one bettor with gas and a deposit, set up through api-1 while chainapi runs."""
    api = platform.api_urls[0]
    fixture = set_up(api, platform.config.admin_token, markets=1, bettors=1, seed=11)
    fund_bettors(platform.config, api, fixture.bettors)
    return fixture


def _auth(bettor: LoadBettor) -> dict[str, str]:
    return {"Authorization": f"Bearer {bettor.token}"}


async def _signed_bet(platform: Platform, gateway: str, bettor: LoadBettor, market_id: int) -> tuple[str, str]:
    """Request a quote through the gateway and sign `placeBet` with it; return (raw transaction, tx hash)."""
    encoders = build_encoders({name: artifact.abi for name, artifact in load_artifacts().items()})
    async with httpx.AsyncClient(timeout=60) as http:
        signed = await ApiClient(http, gateway, token=bettor.token).quote(market_id, 0, STAKE)
        data = encoders["Sportsbook"].encode_abi("placeBet", args=[quote_tuple(signed["quote"]), STAKE, signed["signature"]])
        wallet = Wallet(bettor.account, RpcClient(platform.config.rpc_url, http), platform.config.deployment.chain_id)
        return await wallet.sign(platform.config.deployment.sportsbook, data, gas=BET_GAS)


def _wait_until_sent(gateway: str, key: str, bettor: LoadBettor) -> dict[str, Any]:
    deadline = time.monotonic() + SENT_TIMEOUT_SECONDS
    while True:
        job = httpx.get(f"{gateway}/gateway/retries/{key}", headers=_auth(bettor), timeout=10).json()
        if job["status"] != "queued":
            return job
        assert time.monotonic() < deadline, f"job {key} still queued after {SENT_TIMEOUT_SECONDS} s: {job}"
        time.sleep(0.2)


async def _wait_until_mined(gateway: str, bettor: LoadBettor, tx_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=60) as http:
        return await ApiClient(http, gateway, token=bettor.token).wait_for_transaction(tx_id, timeout=SENT_TIMEOUT_SECONDS)


def _stored_bets(gateway: str, bettor: LoadBettor, tx_hash: str) -> list[dict[str, Any]]:
    """Poll `GET /api/bets` until the bets monitor has stored the bet of `tx_hash`; return the bettor's bets."""
    deadline = time.monotonic() + SENT_TIMEOUT_SECONDS
    while True:
        response = httpx.get(f"{gateway}/api/bets", headers=_auth(bettor), timeout=30)
        assert response.status_code == 200, response.text
        bets = response.json()
        if any(str(bet["tx_hash"]).lower() == tx_hash for bet in bets) or time.monotonic() > deadline:
            return bets
        time.sleep(0.2)


def _bet_placed_logs(platform: Platform) -> list[str]:
    w3 = Web3(HTTPProvider(platform.config.rpc_url, request_kwargs={"timeout": 60}))
    logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": platform.config.deployment.sportsbook, "topics": [BET_PLACED_TOPIC]})
    return [log["transactionHash"].to_0x_hex().lower() for log in logs]


@pytest.mark.slow
def test_up_serves_gateways_first(platform: Platform) -> None:
    urls = platform.urls()

    assert list(urls)[0] == "gateway"
    assert urls["gateway"] == platform.gateway_urls
    assert len(platform.gateway_urls) == 2
    assert len(set(platform.gateway_urls) | set(platform.api_urls)) == 4
    assert platform.config.gateway_url == platform.gateway_urls[0]
    for gateway in platform.gateway_urls:
        assert httpx.get(f"{gateway}/gateway/health", timeout=10).json() == {"status": "ok"}
        assert httpx.get(f"{gateway}/api/health", timeout=10).json() == {"status": "ok"}


@pytest.mark.slow
def test_only_first_gateway_monitors_contracts(platform: Platform) -> None:
    admin = {"Authorization": f"Bearer {platform.config.admin_token}"}
    body = {"address": platform.config.deployment.sportsbook, "contract": "Sportsbook"}

    first = httpx.post(f"{platform.gateway_urls[0]}/gateway/admin/watch", json=body, headers=admin, timeout=10)
    second = httpx.post(f"{platform.gateway_urls[1]}/gateway/admin/watch", json=body, headers=admin, timeout=10)

    assert first.status_code == 201, first.text
    assert second.status_code == 404, second.text
    assert "the contract monitor is off in this gateway" in second.json()["detail"]


@pytest.mark.slow
def test_chainapi_killed_bets_queue(platform: Platform, fixture: Fixture) -> None:
    gateway_1, gateway_2 = platform.gateway_urls
    bettor = fixture.bettors[0]
    market_id = fixture.market_ids[0]
    logs_before = _bet_placed_logs(platform)

    _kill(platform, "chainapi")
    odds = httpx.get(f"{gateway_1}/api/markets/{market_id}/odds", headers=_auth(bettor), timeout=30)
    raw, tx_hash = asyncio.run(_signed_bet(platform, gateway_1, bettor, market_id))
    queued = httpx.post(f"{gateway_1}/api/bets", json={"raw_transaction": raw}, headers=_auth(bettor), timeout=60)

    assert odds.status_code == 200, odds.text
    assert queued.status_code == 202, queued.text
    assert queued.json()["status"] == "queued"
    assert queued.json()["tx_hash"] == tx_hash

    # gateway-2 starts while the job is queued, so it resumes the stored row too and both
    # gateways send it once chainapi is back.
    with platform.stack.stopped("gateway-2", platform.node_configs[1].gateway_port):
        pass
    gateway_2_log = _process(platform, "gateway-2").log_path.read_text()
    assert f"resumed POST /api/bets under key {tx_hash}" in gateway_2_log

    assert Supervisor(platform.stack).check() == ["chainapi"]
    _process(platform, "chainapi").wait_for_port(platform.config.host, platform.config.chainapi_port)
    job = _wait_until_sent(gateway_1, tx_hash, bettor)
    assert job["status"] == "sent", job
    assert job["response_status"] == 202, job
    tx_id = job["response"]["tx_id"]
    assert _wait_until_sent(gateway_2, tx_hash, bettor)["response"]["tx_id"] == tx_id
    assert f"sent /api/bets (key {tx_hash})" in _process(platform, "gateway-2").log_path.read_text()
    mined = asyncio.run(_wait_until_mined(gateway_1, bettor, tx_id))
    bets = _stored_bets(gateway_2, bettor, tx_hash)
    new_logs = _bet_placed_logs(platform)[len(logs_before) :]

    assert mined["status"] == "mined", mined
    assert new_logs == [tx_hash]
    assert [str(bet["tx_hash"]).lower() for bet in bets] == [tx_hash]
    assert bets[0]["stake"] == STAKE


@pytest.mark.slow
def test_api_killed_other_node_serves(platform: Platform, fixture: Fixture) -> None:
    gateway_1, gateway_2 = platform.gateway_urls
    bettor = fixture.bettors[0]
    path = f"/api/markets/{fixture.market_ids[0]}/odds"

    _kill(platform, "api-1")
    from_node_2 = httpx.get(f"{gateway_2}{path}", headers=_auth(bettor), timeout=30)
    from_node_1 = httpx.get(f"{gateway_1}{path}", headers=_auth(bettor), timeout=30)

    assert from_node_2.status_code == 200, from_node_2.text
    assert from_node_1.status_code == 503, from_node_1.text
    assert from_node_1.json()["error"] == "service_unavailable"

    assert Supervisor(platform.stack).check() == ["api-1"]
    _process(platform, "api-1").wait_for_port(platform.config.host, platform.config.api_port)
    again = httpx.get(f"{gateway_1}{path}", headers=_auth(bettor), timeout=30)

    assert again.status_code == 200, again.text
    assert again.json()["market_id"] == from_node_2.json()["market_id"]
