"""`wagerlab up --rpc URL`: the platform on a node it did not start, which outlives it."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO

import httpx
import pytest
from web3 import HTTPProvider, Web3

from wagerlab.chain.accounts import derived_account
from wagerlab.chain.contracts import contract, transact
from wagerlab.cli import main
from wagerlab.platform.config import PlatformConfig
from wagerlab.sim.stack import free_port

STARTUP_TIMEOUT_SECONDS = 180.0
CREDIT_TIMEOUT_SECONDS = 60.0
DEPOSIT = 5_000_000
GAS = 200_000


@pytest.fixture(scope="module")
def external_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`wagerlab chain` on a free loopback port, started by the test as the external node."""
    folder = tmp_path_factory.mktemp("external-node")
    ready_file = folder / "ready.json"
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "wagerlab", "chain", "--port", str(port), "--ready-file", str(ready_file), "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=(folder / "node.log").open("w"),
    )
    deadline = time.monotonic() + 60
    while not ready_file.exists():
        assert process.poll() is None, f"wagerlab chain exited with {process.returncode}: {(folder / 'node.log').read_text()}"
        assert time.monotonic() < deadline, "wagerlab chain did not write its ready file within 60 s"
        time.sleep(0.1)
    yield process, json.loads(ready_file.read_text())["http"]
    process.terminate()
    process.wait(timeout=15)


def _read_lines(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)
    lines.put("")


def _wait_for_urls(up: subprocess.Popen[str], lines: queue.Queue[str]) -> dict[str, str]:
    """Collect the `NAME URL` lines `wagerlab up` prints, and its Ctrl-C line as `ctrl-c`."""
    urls: dict[str, str] = {}
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while True:
        line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
        assert line, f"wagerlab up exited with {up.wait()} before printing its URLs"
        if "Ctrl-C stops" in line:
            urls["ctrl-c"] = line.strip()
            return urls
        name, _, url = line.strip().partition(" ")
        urls[name] = url.strip()


def _deposit(w3: Web3, config: PlatformConfig) -> str:
    """Give a new bettor ether and tokens on the chain and deposit DEPOSIT; return its address."""
    bettor = derived_account(0, "up-rpc-bettor", 0)
    w3.provider.make_request("anvil_setBalance", [bettor.address, hex(10**18)])  # type: ignore[arg-type]
    token = contract(w3, "WagerToken", config.deployment.token)
    book = contract(w3, "Sportsbook", config.deployment.sportsbook)
    for call in (
        token.functions.faucet(DEPOSIT),
        token.functions.approve(book.address, DEPOSIT),
        book.functions.deposit(DEPOSIT),
    ):
        receipt = transact(w3, bettor, call, gas=GAS)
        assert receipt["status"] == 1, f"{call.fn_name} reverted"
    return bettor.address


def _wait_for_credit(api: str, address: str) -> dict[str, int]:
    with httpx.Client(base_url=api, timeout=30) as client:
        registered = client.post("/api/register", json={"username": "carol", "password": "correct horse", "address": address})
        assert registered.status_code == 201, registered.text
        token = client.post("/api/login", json={"username": "carol", "password": "correct horse"}).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + CREDIT_TIMEOUT_SECONDS
        while True:
            balance = client.get("/api/balance", headers=headers).json()
            if balance["available"] == DEPOSIT or time.monotonic() > deadline:
                return balance
            time.sleep(0.2)


@pytest.mark.slow
def test_up_rpc_runs_on_external_node(external_node: tuple[subprocess.Popen[bytes], str], tmp_path: Path) -> None:
    node_process, node_url = external_node
    run_dir = tmp_path / "up"
    up = subprocess.Popen(
        [sys.executable, "-m", "wagerlab", "up", "--rpc", node_url, "--out", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert up.stdout is not None
    threading.Thread(target=_read_lines, args=(up.stdout, lines), daemon=True).start()
    try:
        urls = _wait_for_urls(up, lines)
        config = PlatformConfig.load(run_dir / "platform.json")
        w3 = Web3(HTTPProvider(node_url))

        address = _deposit(w3, config)
        balance = _wait_for_credit(urls["api"], address)

        assert urls["chain"] == node_url
        assert urls["ctrl-c"].endswith(f"Ctrl-C stops every service; the node at {node_url} keeps running")
        assert config.ws_url == node_url.replace("http://", "ws://")
        assert not (run_dir / "logs" / "node.log").exists()
        assert balance == {"available": DEPOSIT, "staked": 0}
    finally:
        up.send_signal(signal.SIGINT)
        exit_code = up.wait(timeout=60)

    assert exit_code == 0
    assert node_process.poll() is None
    assert w3.eth.get_code(config.deployment.sportsbook) != b""


def test_up_rpc_unreachable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"

    exit_code = main(["up", "--rpc", url, "--out", str(tmp_path / "up")])

    error = capsys.readouterr().err
    assert exit_code == 2
    assert f"cannot reach the node at {url}" in error
    assert "Start the node first" in error


def test_up_rpc_rejects_websocket_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exit_code = main(["up", "--rpc", "ws://127.0.0.1:8545", "--out", str(tmp_path / "up")])

    error = capsys.readouterr().err
    assert exit_code == 2
    assert "expected an http:// or https:// node URL, got 'ws://127.0.0.1:8545'" in error


class _ProductionNode(BaseHTTPRequestHandler):
    """A JSON-RPC node without development methods: every account is empty, anvil_setBalance is unknown."""

    RESULTS = {"eth_chainId": "0x1", "eth_getBalance": "0x0"}

    def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        reply: dict[str, object] = {"jsonrpc": "2.0", "id": request["id"]}
        if request["method"] in self.RESULTS:
            reply["result"] = self.RESULTS[request["method"]]
        else:
            reply["error"] = {"code": -32601, "message": f"the method {request['method']} does not exist"}
        body = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_up_rpc_rejects_node_without_dev_methods(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ProductionNode)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        exit_code = main(["up", "--rpc", url, "--out", str(tmp_path / "up")])
    finally:
        server.shutdown()

    error = capsys.readouterr().err
    assert exit_code == 2
    assert f"on the node at {url}, which is not a development node" in error
    assert "anvil_setBalance: " in error
    assert "send it at least" in error
