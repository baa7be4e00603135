"""`--state FILE`: dump the chain as a journal of raw transactions and replay it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from wagerlab.chain.accounts import dev_account
from wagerlab.chain.errors import StateFileError
from wagerlab.chain.node import Node
from wagerlab.chain.state import dump_state, load_state

RECIPIENT = dev_account(9).address


def transfer(node: Node, value: int) -> str:
    sender = node.request("eth_accounts", [])[0]
    return node.request("eth_sendTransaction", [{"from": sender, "to": RECIPIENT, "value": hex(value)}])


def test_state_round_trip(tmp_path: Path) -> None:
    node = Node()
    tx_hash = transfer(node, 1234)
    node.request("evm_increaseTime", [3600])
    node.request("anvil_setBalance", ["0x" + "ab" * 20, "0x2a"])
    transfer(node, 1)
    path = tmp_path / "chain.json"

    assert dump_state(node, path) == 3
    loaded = load_state(path, accounts=10)

    for method, params in [
        ("eth_blockNumber", []),
        ("eth_getBalance", [RECIPIENT, "latest"]),
        ("eth_getBalance", ["0x" + "ab" * 20, "latest"]),
        ("eth_getTransactionCount", [node.request("eth_accounts", [])[0], "latest"]),
    ]:
        assert loaded.request(method, params) == node.request(method, params), method
    original = node.request("eth_getTransactionReceipt", [tx_hash])
    replayed = loaded.request("eth_getTransactionReceipt", [tx_hash])
    assert replayed["status"] == original["status"] == "0x1"
    assert replayed["gasUsed"] == original["gasUsed"]
    for number in ("0x1", "0x2", "0x3"):
        old_block = node.request("eth_getBlockByNumber", [number, False])
        new_block = loaded.request("eth_getBlockByNumber", [number, False])
        assert new_block["timestamp"] == old_block["timestamp"]
        assert new_block["transactions"] == old_block["transactions"]
    assert loaded.time_offset == node.time_offset
    assert loaded.genesis_timestamp == node.genesis_timestamp


def test_state_after_reorg_keeps_new_branch(tmp_path: Path) -> None:
    node = Node()
    transfer(node, 5)
    dropped = transfer(node, 6)
    node.request("anvil_reorg", [1, []])
    path = tmp_path / "chain.json"
    dump_state(node, path)

    loaded = load_state(path, accounts=10)

    assert loaded.request("eth_getTransactionReceipt", [dropped]) is None
    assert loaded.request("eth_getBalance", [RECIPIENT, "latest"]) == node.request("eth_getBalance", [RECIPIENT, "latest"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda doc: doc.update(format="other"), "not a wagerlab-chain-state"),
        (lambda doc: doc.update(chainId=1), "chain id 1"),
        (lambda doc: doc.update(accounts=3), "--accounts 3"),
        (lambda doc: doc.update(blocks={}), "'blocks' must be a list"),
        (lambda doc: doc["blocks"][0].update(number=5), "expected block 1"),
        (lambda doc: doc["blocks"][0].update(transactions=["0x02"]), "transaction rejected"),
        (lambda doc: doc["blocks"][0].update(timestamp="soon"), "timestamp must be an integer"),
        (lambda doc: doc.pop("genesisTimestamp"), "genesisTimestamp must be an integer"),
    ],
)
def test_load_state_invalid_file(tmp_path: Path, change: Any, message: str) -> None:
    node = Node()
    transfer(node, 1)
    path = tmp_path / "chain.json"
    dump_state(node, path)
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))

    with pytest.raises(StateFileError, match=message.replace("[", r"\[")):
        load_state(path, accounts=10)


def test_load_state_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "chain.json"
    path.write_text("{not json")

    with pytest.raises(StateFileError, match="cannot read state file"):
        load_state(path, accounts=10)


def start_chain(tmp_path: Path, state: Path) -> tuple[subprocess.Popen[bytes], str]:
    ready = tmp_path / "ready.json"
    ready.unlink(missing_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "wagerlab", "chain", "--port", "0", "--ready-file", str(ready),
         "--state", str(state), "--log-level", "warning"],
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"wagerlab chain did not start, exit code {process.poll()}")
        time.sleep(0.1)
    return process, json.loads(ready.read_text())["http"]


def call(url: str, method: str, params: list[Any]) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return httpx.post(url, json=body, timeout=10).json()["result"]


def test_chain_command_saves_and_loads_state(tmp_path: Path) -> None:
    state = tmp_path / "chain.json"
    process, url = start_chain(tmp_path, state)
    try:
        sender = call(url, "eth_accounts", [])[0]
        call(url, "eth_sendTransaction", [{"from": sender, "to": RECIPIENT, "value": "0x77"}])
        balance = call(url, "eth_getBalance", [RECIPIENT, "latest"])
    finally:
        process.send_signal(signal.SIGTERM)
        # uvicorn re-raises SIGTERM after a clean shutdown.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert json.loads(state.read_text())["blocks"][0]["number"] == 1

    process, url = start_chain(tmp_path, state)
    try:
        assert call(url, "eth_blockNumber", []) == "0x1"
        assert call(url, "eth_getBalance", [RECIPIENT, "latest"]) == balance
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
