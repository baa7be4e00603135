"""A bet posted through the gateway while chainapi is down is placed exactly once when it returns,
also when the gateway process is killed and restarted meanwhile."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlmodel import Session, select
from api_fixtures import ADMIN_TOKEN, FAST_PASSWORDS, Chain, ServerThread, chain, make_config, sign_call  # noqa: F401

from wagerlab.chain.accounts import dev_account
from wagerlab.chain.contracts import contract, transact
from wagerlab.odds import ONE_TOKEN
from wagerlab.platform.app import build_api_app, build_chainapi_app
from wagerlab.platform.config import PlatformConfig
from wagerlab.platform.db import ChainTransaction, GatewayRetry, RetryStatus, create_tables, make_engine
from wagerlab.platform.gateway import build_gateway_app
from wagerlab.sim.stack import Stack, free_port

BETTOR = dev_account(10)
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
MARKET_ID = 800
RESTART_BETTOR = dev_account(9)
RESTART_MARKET_ID = 801


class FixedPortServer:
    """chainapi on a fixed port, so that it can be stopped and started again at the same address."""

    def __init__(self, config: PlatformConfig) -> None:
        self.config = config
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        app = build_chainapi_app(self.config)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.config.chainapi_port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="chainapi", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "chainapi did not start within 10 s"
            time.sleep(0.01)

    def stop(self) -> None:
        assert self.server is not None and self.thread is not None
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def platform(chain: Chain, tmp_path: Path) -> Iterator[tuple[PlatformConfig, FixedPortServer]]:  # noqa: F811
    db_url = f"sqlite:///{tmp_path / 'platform.db'}"
    create_tables(make_engine(db_url))
    config = make_config(db_url, chain.deployment, rpc_url=chain.url, chainapi_port=free_port(), forensic_log_path=str(tmp_path / "f.jsonl"))
    chainapi = FixedPortServer(config)
    chainapi.start()
    api_app = build_api_app(config)
    api_app.state.api.passwords = FAST_PASSWORDS
    api_thread = ServerThread(api_app, "api")
    api_port = int(api_thread.start().rsplit(":", 1)[1])
    yield PlatformConfig(**{**config.__dict__, "api_port": api_port}), chainapi
    api_thread.stop()
    chainapi.stop()


def _prepare_bet(client: httpx.Client, chain: Chain, bettor: Any = BETTOR, market_id: int = MARKET_ID) -> tuple[dict[str, str], str]:  # noqa: F811
    client.post("/api/register", json={"username": "rita", "password": "correct horse", "address": bettor.address})
    auth = {"Authorization": "Bearer " + client.post("/api/login", json={"username": "rita", "password": "correct horse"}).json()["token"]}
    wager = contract(chain.w3, "WagerToken", chain.deployment.token)
    book = contract(chain.w3, "Sportsbook", chain.deployment.sportsbook)
    for call in (wager.functions.faucet(50 * ONE_TOKEN), wager.functions.approve(book.address, 50 * ONE_TOKEN), book.functions.deposit(50 * ONE_TOKEN)):
        assert transact(chain.w3, bettor, call, gas=300_000)["status"] == 1
    closes_at = chain.w3.eth.get_block("latest")["timestamp"] + 3600
    market = {"market_id": market_id, "name": "bout", "outcomes": ["red", "blue"], "closes_at": closes_at,
              "liability_cap": 1_000 * ONE_TOKEN, "odds": [2_000_000, 1_900_000]}
    assert client.post("/api/admin/markets", json=market, headers=ADMIN).status_code == 201
    issued = client.post("/api/quotes", json={"market_id": market_id, "outcome": 0, "stake": ONE_TOKEN}, headers=auth).json()
    quote = issued["quote"]
    quote_tuple = (quote["bettor"], quote["market_id"], quote["outcome"], quote["odds"], quote["max_stake"], quote["expiry"], quote["nonce"])
    data = book.encode_abi("placeBet", [quote_tuple, quote["max_stake"], bytes.fromhex(issued["signature"][2:])])
    return auth, sign_call(chain.w3, bettor, chain.deployment.sportsbook, data)


def test_gateway_retry_places_bet_once(chain: Chain, platform: tuple[PlatformConfig, FixedPortServer]) -> None:  # noqa: F811
    config, chainapi = platform
    book = contract(chain.w3, "Sportsbook", chain.deployment.sportsbook)
    api_client = httpx.Client(base_url=config.api_url, timeout=60)
    auth, raw = _prepare_bet(api_client, chain)
    bets_before = book.functions.nextBetId().call()

    security = {"retry_base_delay_ms": 200, "retry_max_delay_ms": 500, "retry_attempts": 40, "retry_inline_wait_ms": 1}
    gateway = build_gateway_app(PlatformConfig(**{**config.__dict__, "security": security}), contract_monitor=False)

    async def scenario() -> tuple[httpx.Response, dict[str, object], httpx.Response]:
        transport = httpx.ASGITransport(app=gateway, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=60) as client:
            chainapi.stop()
            queued = await client.post("/api/bets", json={"raw_transaction": raw}, headers=auth)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(chainapi.start)
            job = gateway.state.gateway.retries.jobs[queued.json()["idempotency_key"]]
            await asyncio.wait_for(job.done.wait(), timeout=30)
            again = await client.post("/api/bets", json={"raw_transaction": raw}, headers=auth)
            return queued, job.to_json(), again

    queued, job, again = asyncio.run(scenario())
    deadline = time.monotonic() + 20
    while book.functions.nextBetId().call() == bets_before and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)

    assert queued.status_code == 202
    assert queued.json()["status"] == "queued"
    assert job["status"] == "sent"
    assert job["response_status"] == 202
    assert again.json()["tx_id"] == job["response"]["tx_id"]  # type: ignore[index]
    assert book.functions.nextBetId().call() == bets_before + 1


def test_gateway_restart_keeps_queued_bet(chain: Chain, platform: tuple[PlatformConfig, FixedPortServer], tmp_path: Path) -> None:  # noqa: F811
    config, chainapi = platform
    book = contract(chain.w3, "Sportsbook", chain.deployment.sportsbook)
    auth, raw = _prepare_bet(httpx.Client(base_url=config.api_url, timeout=60), chain, RESTART_BETTOR, RESTART_MARKET_ID)
    bets_before = book.functions.nextBetId().call()

    security = {"retry_base_delay_ms": 200, "retry_max_delay_ms": 500, "retry_attempts": 40, "retry_inline_wait_ms": 1}
    gateway_config = PlatformConfig(**{**config.__dict__, "security": security, "gateway_port": free_port()})
    gateway_config.dump(tmp_path / "platform.json")
    stack = Stack(tmp_path / "gateway-run")
    try:
        stack.spawn("gateway", ["serve", "gateway", "--config", str(tmp_path / "platform.json")])
        stack.processes[0].wait_for_port("127.0.0.1", gateway_config.gateway_port)
        client = httpx.Client(base_url=gateway_config.gateway_url, timeout=60)

        chainapi.stop()
        queued = client.post("/api/bets", json={"raw_transaction": raw}, headers=auth)
        key = queued.json()["idempotency_key"]
        old_pid = stack.kill_and_restart("gateway", gateway_config.gateway_port)
        resumed = client.get(f"/gateway/retries/{key}", headers=auth).json()
        chainapi.start()

        deadline = time.monotonic() + 30
        job = resumed
        while job["status"] == "queued" and time.monotonic() < deadline:
            time.sleep(0.1)
            job = client.get(f"/gateway/retries/{key}", headers=auth).json()
        again = client.post("/api/bets", json={"raw_transaction": raw}, headers=auth)
        gateway_log = (stack.log_dir / "gateway.log").read_text()
    finally:
        stack.stop()
    deadline = time.monotonic() + 20
    while book.functions.nextBetId().call() == bets_before and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)

    engine = make_engine(config.db_url)
    with Session(engine) as session:
        row = session.get(GatewayRetry, key)
        relayed = session.exec(select(ChainTransaction).where(ChainTransaction.idempotency_key == key)).all()
    assert queued.status_code == 202
    assert queued.json()["status"] == "queued"
    assert old_pid != stack.processes[0].pid
    assert resumed["status"] == "queued"
    assert "resumed POST /api/bets under key " + key in gateway_log
    assert job["status"] == "sent"
    assert job["response_status"] == 202
    assert again.json()["tx_id"] == job["response"]["tx_id"]
    assert row is not None
    assert row.status is RetryStatus.SENT
    assert "authorization" not in row.headers
    assert len(relayed) == 1
    assert book.functions.nextBetId().call() == bets_before + 1
    assert auth["Authorization"].split()[1] not in gateway_log
