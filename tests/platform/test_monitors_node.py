"""Monitors against the real chain node over HTTP and WebSocket, with the real contracts."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from eth_account.signers.local import LocalAccount
from monitor_fixtures import account, event_rows, ledger_sums, make_config, make_database
from sqlalchemy.engine import Engine
from sqlmodel import Session
from web3 import HTTPProvider, Web3
from web3.providers.base import BaseProvider
from web3.types import RPCEndpoint, RPCResponse

from wagerlab.chain.accounts import dev_account, dev_roles
from wagerlab.chain.contracts import Quote, contract, revert_reason, sign_quote, transact
from wagerlab.chain.deploy import deploy_platform
from wagerlab.chain.errors import NodeError
from wagerlab.chain.node import Node
from wagerlab.chain.server import build_app
from wagerlab.platform.config import Deployment, PlatformConfig
from wagerlab.platform.db import Bet, BetStatus, Market, MarketStatus, write_session
from wagerlab.platform.monitors import serve_monitors

GAS = 500_000
TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NodeServer:
    """The chain node's app under uvicorn in a thread; stop and start keep the port."""

    def __init__(self, node: Node, port: int) -> None:
        self.node = node
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        config = uvicorn.Config(build_app(self.node), host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="test-chain-node", daemon=True)
        self._thread.start()
        wait_for(lambda: self._server is not None and self._server.started, "the chain node to listen")

    def stop(self) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "the chain node server did not stop within 10 s"


class DirectProvider(BaseProvider):
    """A web3 provider that calls the node object in this process, for use while its server is down."""

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        try:
            return {"jsonrpc": "2.0", "id": 1, "result": self.node.request(method, list(params))}
        except NodeError as err:
            return {"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": str(err)}}

    def is_connected(self, show_traceback: bool = False) -> bool:
        return True


class MonitorsThread:
    """`serve_monitors` on its own event loop in a thread, stopped through its stop event."""

    def __init__(self, config: PlatformConfig, engine: Engine) -> None:
        self.config = config
        self.engine = engine
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="test-monitors", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve_monitors(self.config, self._stop, engine=self.engine, poll_interval=0.05, backoff_initial=0.05, backoff_max=0.4)

        try:
            asyncio.run(main())
        except BaseException as err:
            self.error = err

    def start(self) -> MonitorsThread:
        self._thread.start()
        wait_for(lambda: self._stop is not None, "the monitors to start")
        return self

    def stop(self) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "the monitors did not stop within 10 s"
        assert self.error is None

    def health(self) -> dict[str, Any]:
        return httpx.get(f"{self.config.monitors_url}/health", timeout=5).json()


def wait_for(condition: Callable[[], bool], description: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {description}")
        time.sleep(0.02)


class Chain:
    """A node with the platform deployed and bettors that hold tokens and approved the book."""

    def __init__(self, node_server: NodeServer, w3: Web3, deployment: Deployment) -> None:
        self.server = node_server
        self.w3 = w3
        self.deployment = deployment
        self.bettors = [dev_account(8), dev_account(9)]

    def deposit(self, bettor: LocalAccount, amount: int, w3: Web3 | None = None) -> None:
        w3 = w3 or self.w3
        book = contract(w3, "Sportsbook", self.deployment.sportsbook)
        receipt = transact(w3, bettor, book.functions.deposit(amount), gas=GAS)
        assert receipt["status"] == 1

    def book_balance(self, bettor: LocalAccount) -> int:
        return int(contract(self.w3, "Sportsbook", self.deployment.sportsbook).functions.balanceOf(bettor.address).call())


@pytest.fixture
def chain() -> Iterator[Chain]:
    node_server = NodeServer(Node(), free_port())
    node_server.start()
    w3 = Web3(HTTPProvider(f"http://127.0.0.1:{node_server.port}"))
    deployment = deploy_platform(w3, dev_roles(), house_funding=1_000_000_000)
    result = Chain(node_server, w3, deployment)
    token = contract(w3, "WagerToken", deployment.token)
    for bettor in result.bettors:
        assert transact(w3, bettor, token.functions.faucet(10_000_000_000), gas=GAS)["status"] == 1
        assert transact(w3, bettor, token.functions.approve(deployment.sportsbook, 2**256 - 1), gas=GAS)["status"] == 1
    yield result
    node_server.stop()


def platform_config(chain: Chain, tmp_path: Path, **overrides: Any) -> tuple[PlatformConfig, Engine]:
    url, engine = make_database(tmp_path)
    port = chain.server.port
    config = make_config(
        url,
        rpc_url=f"http://127.0.0.1:{port}",
        ws_url=f"ws://127.0.0.1:{port}",
        deployment=chain.deployment,
        monitors_port=free_port(),
        **overrides,
    )
    return config, engine


def deposit_rows(engine: Engine) -> int:
    return sum(1 for row in event_rows(engine) if row.event == "Deposited")


def test_deposits_credited_once_across_restart(chain: Chain, tmp_path: Path) -> None:
    config, engine = platform_config(chain, tmp_path)
    alice, bob = chain.bettors
    monitors = MonitorsThread(config, engine).start()
    chain.deposit(alice, 1_000_000)
    chain.deposit(bob, 2_000_000)
    wait_for(lambda: account(engine, bob.address)[0] == 2_000_000, "Bob's first deposit")
    monitors.stop()

    chain.deposit(alice, 3_000_000)
    chain.deposit(alice, 4_000_000)
    chain.deposit(bob, 5_000_000)
    monitors = MonitorsThread(config, engine).start()
    wait_for(lambda: deposit_rows(engine) >= 5, "five deposits")
    time.sleep(0.3)  # time for a wrong second credit to show
    monitors.stop()

    assert deposit_rows(engine) == 5
    assert account(engine, alice.address) == (8_000_000, 0)
    assert account(engine, bob.address) == (7_000_000, 0)
    assert account(engine, alice.address)[0] == chain.book_balance(alice)
    assert all(total == 0 for total in ledger_sums(engine).values())


def test_dropped_websocket_backfills_outage(chain: Chain, tmp_path: Path) -> None:
    config, engine = platform_config(chain, tmp_path)
    alice, bob = chain.bettors
    monitors = MonitorsThread(config, engine).start()
    chain.deposit(alice, 1_000_000)
    wait_for(lambda: account(engine, alice.address)[0] == 1_000_000, "the first deposit")

    chain.server.stop()
    direct = Web3(DirectProvider(chain.server.node))
    chain.deposit(alice, 2_000_000, w3=direct)
    chain.deposit(bob, 3_000_000, w3=direct)
    time.sleep(0.5)  # the monitors fail to reconnect and back off meanwhile
    chain.server.start()
    chain.deposit(bob, 4_000_000)

    wait_for(lambda: deposit_rows(engine) >= 4, "four deposits")
    health = monitors.health()
    monitors.stop()

    assert account(engine, alice.address) == (3_000_000, 0)
    assert account(engine, bob.address) == (7_000_000, 0)
    assert deposit_rows(engine) == 4
    deposits_health = health["monitors"]["deposits"]
    assert deposits_health["restarts"] >= 1
    assert deposits_health["last_error"] is not None
    assert deposits_health["events_applied"] == 4


def test_backfill_across_chunk_boundaries(chain: Chain, tmp_path: Path) -> None:
    alice, bob = chain.bettors
    amounts = [1, 2, 3, 4, 5, 6, 7]
    for index, amount in enumerate(amounts):
        chain.deposit(chain.bettors[index % 2], amount)
    config, engine = platform_config(chain, tmp_path, log_chunk_blocks=2)

    monitors = MonitorsThread(config, engine).start()
    wait_for(lambda: deposit_rows(engine) >= len(amounts), "every deposit")
    wait_for(lambda: monitors.health()["monitors"]["deposits"]["lag_blocks"] == 0, "the deposits monitor to reach the head")
    health = monitors.health()
    monitors.stop()

    assert deposit_rows(engine) == len(amounts)
    assert account(engine, alice.address) == (1 + 3 + 5 + 7, 0)
    assert account(engine, bob.address) == (2 + 4 + 6, 0)
    head = chain.w3.eth.block_number
    for name in ("deposits", "bets", "settlement"):
        assert health["monitors"][name]["state"] == "live"
        assert health["monitors"][name]["cursor_block"] == head + 1
    assert health["status"] == "ok"


def test_confirmations_delay_apply(chain: Chain, tmp_path: Path) -> None:
    config, engine = platform_config(chain, tmp_path, confirmations=2)
    alice, bob = chain.bettors
    monitors = MonitorsThread(config, engine).start()
    chain.deposit(alice, 1_000_000)
    time.sleep(0.5)
    assert account(engine, alice.address) == (0, 0)

    chain.deposit(bob, 1)
    chain.deposit(bob, 2)
    wait_for(lambda: account(engine, alice.address)[0] == 1_000_000, "the deposit two blocks deep")
    time.sleep(0.3)
    monitors.stop()

    assert account(engine, bob.address) == (0, 0)


def test_bets_settled_and_claimed(chain: Chain, tmp_path: Path) -> None:
    config, engine = platform_config(chain, tmp_path)
    alice, bob = chain.bettors
    roles = dev_roles()
    w3 = chain.w3
    book = contract(w3, "Sportsbook", chain.deployment.sportsbook)
    oracle = contract(w3, "ResultOracle", chain.deployment.oracle)
    now = int(w3.eth.get_block("latest")["timestamp"])
    with write_session(engine) as session:
        session.add(Market(market_id=7, name="final", outcomes=["home", "away"], closes_at=now + 3600, liability_cap=10**12))
    monitors = MonitorsThread(config, engine).start()

    send(w3, roles.operator, book.functions.createMarket(7, 2, now + 3600, 10**12))
    chain.deposit(alice, 10_000_000)
    chain.deposit(bob, 10_000_000)
    for nonce, (bettor, outcome, stake, odds) in enumerate([(alice, 0, 2_000_000, 2_500_000), (bob, 1, 3_000_000, 1_800_000)], start=1):
        quote = Quote(bettor=bettor.address, market_id=7, outcome=outcome, odds=odds, max_stake=stake, expiry=now + 3600, nonce=nonce)
        signature = sign_quote(roles.odds_signer, chain.deployment.chain_id, chain.deployment.sportsbook, quote)
        send(w3, bettor, book.functions.placeBet(quote.as_tuple(), stake, signature))
    send(w3, roles.operator, book.functions.closeMarket(7))
    for reporter in roles.reporters[:2]:
        send(w3, reporter, oracle.functions.submitResult(7, 0))
    send(w3, alice, book.functions.claim(1))

    wait_for(lambda: bet_status(engine, 1) == BetStatus.CLAIMED, "Alice's claim")
    monitors.stop()

    assert bet_status(engine, 2) == BetStatus.LOST
    assert account(engine, alice.address) == (13_000_000, 0)
    assert account(engine, bob.address) == (7_000_000, 0)
    assert account(engine, alice.address)[0] == chain.book_balance(alice)
    assert account(engine, bob.address)[0] == chain.book_balance(bob)
    with Session(engine) as session:
        market = session.get(Market, 7)
    assert market is not None
    assert (market.status, market.winning_outcome, market.total_payout) == (MarketStatus.SETTLED, 0, 5_000_000)
    assert all(total == 0 for total in ledger_sums(engine).values())


def send(w3: Web3, sender: LocalAccount, call: Any) -> None:
    receipt = transact(w3, sender, call, gas=GAS)
    assert receipt["status"] == 1, revert_reason(w3, receipt)


def bet_status(engine: Engine, bet_id: int) -> BetStatus | None:
    with Session(engine) as session:
        bet = session.get(Bet, bet_id)
        return bet.status if bet else None


def test_serve_monitors_stops_on_sigterm(chain: Chain, tmp_path: Path) -> None:
    config, engine = platform_config(chain, tmp_path)
    config_path = tmp_path / "platform.json"
    config.dump(config_path)
    alice = chain.bettors[0]
    chain.deposit(alice, 1_000_000)

    process = subprocess.Popen(
        [sys.executable, "-m", "wagerlab", "serve", "monitors", "--config", str(config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: health_status(config) == 200, "the monitors' health endpoint to report ok")
        wait_for(lambda: account(engine, alice.address)[0] == 1_000_000, "the deposit")
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = process.stdout.read().decode() if process.stdout else ""

    assert exit_code == 0, output
    assert "stopping" in output
    assert "Traceback" not in output


def health_status(config: PlatformConfig) -> int | None:
    try:
        return httpx.get(f"{config.monitors_url}/health", timeout=2).status_code
    except httpx.TransportError:
        return None
