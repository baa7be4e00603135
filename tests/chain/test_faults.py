"""Fault injection: wagerlab_setFaults, wagerlab_dropConnections and wagerlab_restart."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any, Iterator

import httpx
import pytest
from chain_helpers import RunningNode
from web3 import Web3
from web3.exceptions import Web3RPCError
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from wagerlab.chain.faults import FaultSettings, parse_fault_settings


@pytest.fixture
def no_faults(running: RunningNode) -> Iterator[None]:
    yield
    running.rpc("wagerlab_setFaults", [{}])


def block_number_errors(running: RunningNode, count: int) -> list[int | None]:
    """Send a batch of `count` eth_blockNumber requests; return each error code, or None."""
    batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_blockNumber"} for i in range(count)]
    replies = httpx.post(running.http_url, json=batch, timeout=10).json()
    return [reply.get("error", {}).get("code") for reply in sorted(replies, key=lambda r: r["id"])]


def test_fail_share_one_fails_everything(running: RunningNode, no_faults: None) -> None:
    running.rpc("wagerlab_setFaults", [{"fail_share": 1}])

    reply = running.rpc("eth_blockNumber")

    assert reply["error"]["code"] == -32603
    assert "injected fault" in reply["error"]["message"]
    counts = running.rpc("wagerlab_setFaults", [{}])["result"]
    assert counts == {"none": 0, "delay": 0, "fail": 1, "duplicate": 0}
    assert "result" in running.rpc("eth_blockNumber")


def test_fail_share_is_seeded(running: RunningNode, no_faults: None) -> None:
    running.rpc("wagerlab_setFaults", [{"fail_share": 0.5, "seed": 7}])
    first = block_number_errors(running, 40)
    running.rpc("wagerlab_setFaults", [{"fail_share": 0.5, "seed": 7}])
    second = block_number_errors(running, 40)
    running.rpc("wagerlab_setFaults", [{"fail_share": 0.5, "seed": 8}])
    other_seed = block_number_errors(running, 40)

    assert first == second
    assert first != other_seed
    assert set(first) == {None, -32603}
    assert 10 <= first.count(-32603) <= 30


def test_faults_apply_per_batch_item(running: RunningNode, no_faults: None) -> None:
    running.rpc("wagerlab_setFaults", [{"fail_share": 1}])
    batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_chainId"} for i in range(3)]
    batch.append({"jsonrpc": "2.0", "id": 3, "method": "wagerlab_setFaults", "params": [{}]})

    replies = httpx.post(running.http_url, json=batch, timeout=10).json()

    assert [reply["error"]["code"] for reply in replies[:3]] == [-32603] * 3
    assert replies[3]["result"] == {"none": 0, "delay": 0, "fail": 3, "duplicate": 0}


def test_delay_share_delays_responses(running: RunningNode, no_faults: None) -> None:
    running.rpc("wagerlab_setFaults", [{"delay_ms": 150, "delay_share": 1}])

    started = time.monotonic()
    reply = running.rpc("eth_blockNumber")
    elapsed = time.monotonic() - started

    assert "result" in reply
    # A lower bound only: load on the machine can make the request slower, never faster.
    assert elapsed >= 0.15
    assert running.rpc("wagerlab_setFaults", [{}])["result"]["delay"] == 1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"fail_share": 1.5}, "faults.fail_share"),
        ({"delay_share": -0.1}, "faults.delay_share"),
        ({"delay_share": 0.6, "fail_share": 0.6}, "at most 1"),
        ({"delay_ms": "100"}, "faults.delay_ms"),
        ({"delay_ms": 10**9}, "faults.delay_ms"),
        ({"seed": True}, "faults.seed"),
        ({"duplicate_share": 2}, "faults.duplicate_share"),
        ({"jitter": 1}, "unknown keys ['jitter']"),
        ("fail", "expected an object"),
    ],
)
def test_set_faults_invalid(running: RunningNode, settings: Any, message: str) -> None:
    error = running.rpc("wagerlab_setFaults", [settings])["error"]

    assert error["code"] == -32602
    assert message in error["message"]


def test_parse_fault_settings_defaults() -> None:
    assert parse_fault_settings({}) == FaultSettings()
    assert parse_fault_settings({"delay_ms": 5, "delay_share": 0.25}) == FaultSettings(delay_ms=5, delay_share=0.25)


def mined_block_notifications(running: RunningNode, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Subscribe to newHeads, mine one block under `settings`, and return every notification received."""
    with connect(running.ws_url) as connection:
        connection.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}))
        json.loads(connection.recv(timeout=5))
        running.rpc("wagerlab_setFaults", [settings])
        running.rpc("evm_mine")
        received = [json.loads(connection.recv(timeout=5))]
        with pytest.raises(TimeoutError):
            while True:
                received.append(json.loads(connection.recv(timeout=0.5)))
    return received


def test_duplicate_share_one_sends_notifications_twice(running: RunningNode, no_faults: None) -> None:
    received = mined_block_notifications(running, {"duplicate_share": 1})

    assert len(received) == 2
    assert received[0] == received[1]
    assert received[0]["method"] == "eth_subscription"
    counts = running.rpc("wagerlab_setFaults", [{}])["result"]
    assert counts == {"none": 0, "delay": 0, "fail": 0, "duplicate": 1}


def test_duplicate_share_zero_sends_notifications_once(running: RunningNode, no_faults: None) -> None:
    received = mined_block_notifications(running, {})

    assert len(received) == 1
    assert running.rpc("wagerlab_setFaults", [{}])["result"]["duplicate"] == 0


def test_duplicate_share_leaves_responses_alone(running: RunningNode, no_faults: None) -> None:
    running.rpc("wagerlab_setFaults", [{"duplicate_share": 1}])

    errors = block_number_errors(running, 20)

    assert errors == [None] * 20


def test_drop_connections_closes_websockets(running: RunningNode) -> None:
    with connect(running.ws_url) as first, connect(running.ws_url) as second:
        first.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}))
        first.recv(timeout=5)

        assert running.rpc("wagerlab_dropConnections")["result"] == 2

        for connection in (first, second):
            with pytest.raises(ConnectionClosed) as closed:
                connection.recv(timeout=5)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1012

    with connect(running.ws_url) as fresh:
        fresh.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "eth_chainId"}))
        assert json.loads(fresh.recv(timeout=5))["result"] == "0x" + format(running.node.chain_id, "x")


def test_restart_loses_filters_and_keeps_chain(w3: Web3, running: RunningNode) -> None:
    block_filter = w3.eth.filter("latest")
    raw_filter = running.rpc("eth_newPendingTransactionFilter")["result"]
    w3.eth.send_transaction({"to": w3.eth.accounts[9], "value": 5})
    assert len(block_filter.get_new_entries()) == 1
    number = w3.eth.block_number
    balance = w3.eth.get_balance(w3.eth.accounts[9])

    with connect(running.ws_url) as connection:
        result = running.rpc("wagerlab_restart")["result"]
        with pytest.raises(ConnectionClosed):
            connection.recv(timeout=5)

    assert result["filters"] >= 2
    assert result["connections"] == 1
    with pytest.raises(Web3RPCError, match="filter not found"):
        block_filter.get_new_entries()
    error = running.rpc("eth_getFilterChanges", [raw_filter])["error"]
    assert error["code"] == -32000
    assert error["message"].startswith("filter not found")
    assert w3.eth.block_number == number
    assert w3.eth.get_balance(w3.eth.accounts[9]) == balance


def test_chain_command_rejects_invalid_fault_options() -> None:
    command = [sys.executable, "-m", "wagerlab", "chain", "--port", "0", "--fault-fail-share", "2"]

    completed = subprocess.run(command, capture_output=True, text=True, timeout=60)

    assert completed.returncode == 2
    assert "faults.fail_share" in completed.stderr
    assert "expected a number from 0 to 1, got 2.0" in completed.stderr
