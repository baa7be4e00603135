"""Measure signed ETH transfers and `placeBet` calls per second: eth-tester in-process
against the chain node over HTTP and over WebSocket.

Every transaction is signed before the clock starts and carries an explicit gas limit, so
the numbers compare transport and node overhead, not signing or gas estimation. The node
runs in its own process (`run_node`), as `wagerlab chain` does. The placeBet workload
deploys the contracts on each chain first (bench/placebet_workload.py) and checks after
each mode that every bet was mined with status 1.

Usage: .venv/bin/python bench/bench_node.py [--count 200] [--rounds 3]
       [--workload transfer|placebet|both] [--anvil PATH]
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import socket
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from eth_tester import EthereumTester, PyEVMBackend
from eth_utils import keccak
from web3 import EthereumTesterProvider, HTTPProvider, Web3
from websockets.sync.client import connect

from wagerlab.chain.accounts import dev_account
from wagerlab.chain.external import fund_dev_accounts
from wagerlab.chain.node import Node

from placebet_workload import NodeProvider, PlaceBetChain, prepare_chain

WARMUP = 20
JSON = {"content-type": "application/json"}


class Sender(Protocol):
    """One mode: sends signed raw transactions one after another and returns once all are mined."""

    def send_all(self, transactions: list[str]) -> None: ...


def signed_transfers(chain_id: int, first_nonce: int, count: int) -> list[str]:
    sender = dev_account(1)
    recipient = dev_account(2).address
    transfers = []
    for nonce in range(first_nonce, first_nonce + count):
        tx = {
            "to": recipient,
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 2 * 10**9,
            "maxPriorityFeePerGas": 10**9,
            "nonce": nonce,
            "chainId": chain_id,
        }
        transfers.append("0x" + sender.sign_transaction(tx).raw_transaction.hex())
    return transfers


class InProcess:
    """eth-tester called directly, the baseline."""

    def __init__(self) -> None:
        self.tester = EthereumTester(PyEVMBackend())
        self.chain_id = self.tester.backend.chain.chain_id

    def send_all(self, transfers: list[str]) -> None:
        for raw in transfers:
            self.tester.send_raw_transaction(raw)


class DirectNode:
    """`Node.request` called in this process: the node's own work without any transport."""

    def __init__(self) -> None:
        self.node = Node()
        self.chain_id = self.node.chain_id

    def send_all(self, transfers: list[str]) -> None:
        for raw in transfers:
            self.node.request("eth_sendRawTransaction", [raw])


def request(method: str, params: list, request_id: int) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})


def check_reply(text: str | bytes) -> None:
    reply = json.loads(text)
    if "error" in reply:
        raise RuntimeError(f"the node rejected a benchmark transaction: {reply['error']}")


class OverHttp:
    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.Client(headers={"content-type": "application/json"})

    def send_all(self, transfers: list[str]) -> None:
        for index, raw in enumerate(transfers):
            reply = self.client.post(self.url, content=request("eth_sendRawTransaction", [raw], index))
            check_reply(reply.content)


class OverHttpClient:
    """The same requests through the standard library's `http.client`, a thinner client than
    httpx, to separate the client library's cost from the node's."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port)

    def send_all(self, transfers: list[str]) -> None:
        # The server may have closed the idle keep-alive connection since the last batch;
        # after close() http.client connects again on the next request.
        self.connection.close()
        headers = {"content-type": "application/json"}
        for index, raw in enumerate(transfers):
            self.connection.request("POST", "/", request("eth_sendRawTransaction", [raw], index), headers)
            check_reply(self.connection.getresponse().read())


class OverWebSocket:
    def __init__(self, url: str) -> None:
        self.connection = connect(url)

    def send_all(self, transfers: list[str]) -> None:
        for index, raw in enumerate(transfers):
            self.connection.send(request("eth_sendRawTransaction", [raw], index))
            check_reply(self.connection.recv())


class AnvilOverHttp(OverHttpClient):
    """anvil through `http.client`. anvil returns the hash before it mines, so the clock
    stops only once the last transaction has a receipt."""

    def send_all(self, transfers: list[str]) -> None:
        super().send_all(transfers)
        last_hash = "0x" + keccak(hexstr=transfers[-1]).hex()
        while True:
            self.connection.request("POST", "/", request("eth_getTransactionReceipt", [last_hash], 0), JSON)
            if json.loads(self.connection.getresponse().read()).get("result") is not None:
                return
            time.sleep(0.001)


def start_anvil(binary: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start anvil on a free loopback port and fund dev account 1 there."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", str(port), "--silent"])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.post(url, content=request("anvil_setBalance", [dev_account(1).address, hex(10**24)], 1), headers=JSON)
            return process, url
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"anvil did not start on {url} within 30 s") from None
            time.sleep(0.05)


def start_node(ready_file: Path) -> subprocess.Popen[bytes]:
    code = (
        "from pathlib import Path; from wagerlab.chain.server import run_node; "
        f"run_node('127.0.0.1', 0, log_level='warning', ready_file=Path({str(ready_file)!r}))"
    )
    process = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 30
    while not ready_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the chain node did not start within 30 s")
        time.sleep(0.05)
    return process


WORKLOADS = ("transfer", "placebet", "both")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="timed transactions per mode and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the modes take turns in each")
    parser.add_argument(
        "--workload",
        choices=WORKLOADS,
        default="both",
        help="signed ETH transfers, placeBet calls on a deployed Sportsbook, or both one after the other (default: both)",
    )
    parser.add_argument(
        "--anvil",
        default=os.environ.get("WAGERLAB_ANVIL") or shutil.which("anvil"),
        help="anvil binary to measure too (default: $WAGERLAB_ANVIL, then anvil on PATH; none skips it)",
    )
    args = parser.parse_args()
    if args.count < 1 or args.rounds < 1:
        parser.error(f"--count and --rounds must be at least 1, got {args.count} and {args.rounds}")

    with tempfile.TemporaryDirectory() as folder:
        process = start_node(Path(folder) / "ready.json")
        skip_anvil = not args.anvil or args.anvil.lower() == "none"
        anvil = None if skip_anvil else start_anvil(args.anvil)
        try:
            urls = json.loads((Path(folder) / "ready.json").read_text())
            if anvil is not None:
                urls["anvil"] = anvil[1]
            if args.workload in ("transfer", "both"):
                transfer_rates = run_rounds(urls, args.count, args.rounds)
            if args.workload in ("placebet", "both"):
                placebet_rates = run_placebet_rounds(urls, args.count, args.rounds)
        finally:
            for child in [process] + ([anvil[0]] if anvil else []):
                child.terminate()
                child.wait(timeout=10)
    if args.workload in ("transfer", "both"):
        print_table(transfer_rates, f"{args.count} signed transfers per mode and round, {args.rounds} rounds")
    if args.workload in ("placebet", "both"):
        print_table(placebet_rates, f"{args.count} placeBet calls per mode and round, {args.rounds} rounds")


def build_modes(urls: dict[str, str]) -> tuple[dict[str, Sender], dict[str, str], InProcess, DirectNode]:
    """Return the senders by mode name, the chain each mode sends to, and the two in-process chains."""
    in_process = InProcess()
    direct = DirectNode()
    modes: dict[str, Sender] = {
        "eth-tester in-process": in_process,
        "Node.request in-process": direct,
        "node over HTTP (httpx)": OverHttp(urls["http"]),
        "node over HTTP (http.client)": OverHttpClient(urls["http"]),
        "node over WebSocket": OverWebSocket(urls["ws"]),
    }
    chain_of = {mode: "node" for mode in modes}
    chain_of["eth-tester in-process"] = "in-process"
    chain_of["Node.request in-process"] = "direct"
    if "anvil" in urls:
        modes["anvil over HTTP (http.client)"] = AnvilOverHttp(urls["anvil"])
        chain_of["anvil over HTTP (http.client)"] = "anvil"
    return modes, chain_of, in_process, direct


def run_rounds(urls: dict[str, str], count: int, rounds: int) -> dict[str, list[float]]:
    """Run the modes in turn, `rounds` times, so load from other processes hits each alike."""
    modes, chain_of, in_process, direct = build_modes(urls)
    # The eth-tester, direct, node and anvil chains are separate, so each has its own nonce
    # sequence; the HTTP and WebSocket modes share the node's.
    next_nonce = {"in-process": 0, "direct": 0, "node": 0, "anvil": 0}
    node_reply = httpx.post(urls["http"], content=request("eth_chainId", [], 1)).json()
    chain_ids = {"in-process": in_process.chain_id, "direct": direct.chain_id, "node": int(node_reply["result"], 16)}
    if "anvil" in urls:
        anvil_reply = httpx.post(urls["anvil"], content=request("eth_chainId", [], 1), headers=JSON).json()
        chain_ids["anvil"] = int(anvil_reply["result"], 16)
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    for round_index in range(rounds + 1):
        for mode, sender in modes.items():
            chain = chain_of[mode]
            size = WARMUP if round_index == 0 else count
            transfers = signed_transfers(chain_ids[chain], next_nonce[chain], size)
            next_nonce[chain] += size
            started = time.perf_counter()
            sender.send_all(transfers)
            elapsed = time.perf_counter() - started
            if round_index > 0:
                rates[mode].append(size / elapsed)
    return rates


def run_placebet_rounds(urls: dict[str, str], count: int, rounds: int) -> dict[str, list[float]]:
    """Run the modes in turn as `run_rounds` does, each sending signed placeBet transactions.

    Signing and the receipt check after each mode stay outside the clock. The HTTP and
    WebSocket modes share the node's Sportsbook and bettor, as they share its nonces.
    """
    modes, chain_of, in_process, direct = build_modes(urls)
    providers: dict[str, Any] = {
        "in-process": EthereumTesterProvider(in_process.tester),
        "direct": NodeProvider(direct.node),
        "node": HTTPProvider(urls["http"], request_kwargs={"timeout": 60}),
    }
    if "anvil" in urls:
        providers["anvil"] = HTTPProvider(urls["anvil"], request_kwargs={"timeout": 60})
    chains: dict[str, PlaceBetChain] = {}
    for name, provider in providers.items():
        w3 = Web3(provider)
        if name == "anvil":
            fund_dev_accounts(w3)
        chains[name] = prepare_chain(w3)

    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    for round_index in range(rounds + 1):
        for mode, sender in modes.items():
            chain = chains[chain_of[mode]]
            size = WARMUP if round_index == 0 else count
            bets = chain.sign_bets(size)
            started = time.perf_counter()
            sender.send_all(bets)
            elapsed = time.perf_counter() - started
            chain.check_receipts(bets, mode)
            if round_index > 0:
                rates[mode].append(size / elapsed)
    return rates


def print_table(rates: dict[str, list[float]], title: str) -> None:
    baseline = statistics.median(rates["eth-tester in-process"])
    print(f"{title}, median tx/s")
    print(f"{'mode':<30} {'median tx/s':>11} {'min':>7} {'max':>7} {'ratio':>6}")
    for mode, values in rates.items():
        median = statistics.median(values)
        print(f"{mode:<30} {median:>11.1f} {min(values):>7.1f} {max(values):>7.1f} {median / baseline:>6.2f}")


if __name__ == "__main__":
    main()
