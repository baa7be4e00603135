"""Polling filters, pending-transaction notifications and the mining controls."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from chain_helpers import RunningNode
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract
from websockets.sync.client import connect

from wagerlab.chain.accounts import dev_account

STORED = "0x" + keccak(text="Stored(uint256,address,uint256)").hex()
RECIPIENT = dev_account(9).address


def result(running: RunningNode, method: str, params: list[Any] | None = None) -> Any:
    reply = running.rpc(method, params)
    assert "error" not in reply, reply
    return reply["result"]


def test_log_filter_changes_and_logs(w3: Web3, running: RunningNode, probe: Contract) -> None:
    start = w3.eth.block_number + 1
    filter_id = result(running, "eth_newFilter", [{"fromBlock": hex(start), "address": probe.address, "topics": [STORED]}])
    probe.functions.store(1, 10).transact()
    probe.functions.ping(b"\x01" * 32).transact()
    probe.functions.store(2, 20).transact()

    changes = result(running, "eth_getFilterChanges", [filter_id])

    assert [int(log["topics"][1], 16) for log in changes] == [1, 2]
    assert result(running, "eth_getFilterChanges", [filter_id]) == []
    assert result(running, "eth_getFilterLogs", [filter_id]) == changes
    probe.functions.store(3, 30).transact()
    assert len(result(running, "eth_getFilterLogs", [filter_id])) == 3


def test_web3_block_filter(w3: Web3) -> None:
    block_filter = w3.eth.filter("latest")
    w3.eth.send_transaction({"to": RECIPIENT, "value": 1})
    w3.eth.send_transaction({"to": RECIPIENT, "value": 1})

    hashes = block_filter.get_new_entries()

    assert hashes == [w3.eth.get_block(n)["hash"] for n in (w3.eth.block_number - 1, w3.eth.block_number)]
    assert block_filter.get_new_entries() == []


def test_pending_transaction_filter(w3: Web3, running: RunningNode) -> None:
    filter_id = result(running, "eth_newPendingTransactionFilter")
    tx_hash = w3.eth.send_transaction({"to": RECIPIENT, "value": 1})

    assert result(running, "eth_getFilterChanges", [filter_id]) == ["0x" + tx_hash.hex()]


def test_uninstall_filter(running: RunningNode) -> None:
    filter_id = result(running, "eth_newBlockFilter")

    assert result(running, "eth_uninstallFilter", [filter_id]) is True
    assert result(running, "eth_uninstallFilter", [filter_id]) is False
    error = running.rpc("eth_getFilterChanges", [filter_id])["error"]
    assert error["code"] == -32000
    assert error["message"].startswith("filter not found")


def test_filter_logs_of_block_filter_is_rejected(running: RunningNode) -> None:
    filter_id = result(running, "eth_newBlockFilter")

    error = running.rpc("eth_getFilterLogs", [filter_id])["error"]

    assert "not a log filter" in error["message"]


@pytest.mark.parametrize(
    ("criteria", "message"),
    [
        ({"fromBlock": "0x5", "toBlock": "0x1"}, "filter.fromBlock"),
        ({"address": "0x12"}, "filter.address"),
        ({"topics": ["0x00"]}, "filter.topics[0]"),
    ],
)
def test_new_filter_invalid(running: RunningNode, criteria: dict[str, Any], message: str) -> None:
    for _ in range(5):
        running.rpc("evm_mine")

    error = running.rpc("eth_newFilter", [criteria])["error"]

    assert error["code"] == -32602
    assert message in error["message"]


def test_new_pending_transactions_subscription(w3: Web3, running: RunningNode) -> None:
    with connect(running.ws_url) as connection:
        request = {"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newPendingTransactions"]}
        connection.send(json.dumps(request))
        subscription = json.loads(connection.recv(timeout=5))["result"]
        tx_hash = w3.eth.send_transaction({"to": RECIPIENT, "value": 1})

        message = json.loads(connection.recv(timeout=5))

    assert message["params"] == {"subscription": subscription, "result": "0x" + tx_hash.hex()}


def test_automine_off_keeps_transactions_pending(w3: Web3, running: RunningNode) -> None:
    number = w3.eth.block_number
    sender = w3.eth.accounts[0]
    result(running, "evm_setAutomine", [False])
    try:
        first = w3.eth.send_transaction({"to": RECIPIENT, "value": 1})
        second = w3.eth.send_transaction({"to": RECIPIENT, "value": 2})

        assert w3.eth.block_number == number
        assert running.rpc("eth_getTransactionReceipt", ["0x" + first.hex()])["result"] is None
        assert w3.eth.get_transaction_count(sender, "pending") == w3.eth.get_transaction_count(sender) + 2

        result(running, "evm_mine")
    finally:
        result(running, "evm_setAutomine", [True])

    block = w3.eth.get_block("latest")
    assert block["number"] == number + 1
    assert block["transactions"] == [first, second]
    assert w3.eth.get_transaction_receipt(second)["status"] == 1


def test_enabling_automine_mines_pending(w3: Web3, running: RunningNode) -> None:
    number = w3.eth.block_number
    result(running, "evm_setAutomine", [False])
    tx_hash = w3.eth.send_transaction({"to": RECIPIENT, "value": 3})

    result(running, "evm_setAutomine", [True])

    assert w3.eth.block_number == number + 1
    assert w3.eth.get_transaction_receipt(tx_hash)["blockNumber"] == number + 1


def test_interval_mining(w3: Web3, running: RunningNode) -> None:
    number = w3.eth.block_number
    result(running, "evm_setIntervalMining", [1])
    try:
        deadline = time.monotonic() + 30
        while w3.eth.block_number < number + 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        result(running, "evm_setIntervalMining", [0])

    assert w3.eth.block_number >= number + 2
    stopped_at = w3.eth.block_number
    time.sleep(1.5)
    assert w3.eth.block_number == stopped_at


@pytest.mark.parametrize("method", ["anvil_setBalance", "hardhat_setBalance"])
def test_set_balance(w3: Web3, running: RunningNode, method: str) -> None:
    address = dev_account(50).address

    assert result(running, method, [address, hex(10**21)]) is None

    assert w3.eth.get_balance(address) == 10**21
    assert w3.eth.get_balance(address, "pending") == 10**21


def test_set_balance_then_spend(w3: Web3, running: RunningNode) -> None:
    account = dev_account(51)
    result(running, "anvil_setBalance", [account.address, hex(10**18)])
    tx = {
        "to": RECIPIENT, "value": 10**17, "gas": 21_000, "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9, "nonce": 0, "chainId": w3.eth.chain_id,
    }

    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)

    assert w3.eth.get_transaction_receipt(tx_hash)["status"] == 1
    assert w3.eth.get_balance(account.address) < 9 * 10**17


def test_set_balance_invalid(running: RunningNode) -> None:
    error = running.rpc("anvil_setBalance", ["0x1234", "0x1"])["error"]

    assert error["code"] == -32602
    assert "address" in error["message"]


@pytest.mark.parametrize(("method", "params", "count"), [("anvil_mine", [3, 60], 3), ("hardhat_mine", ["0x2", "0x3c"], 2)])
def test_mine_many_blocks(w3: Web3, running: RunningNode, method: str, params: list[Any], count: int) -> None:
    number = w3.eth.block_number

    result(running, method, params)

    assert w3.eth.block_number == number + count
    timestamps = [w3.eth.get_block(n)["timestamp"] for n in range(number, number + count + 1)]
    assert [b - a for a, b in zip(timestamps, timestamps[1:])] == [60] * count


def test_mine_zero_blocks_invalid(running: RunningNode) -> None:
    error = running.rpc("anvil_mine", ["0x0"])["error"]

    assert error["code"] == -32602
    assert "blocks" in error["message"]


def test_filters_survive_concurrent_polls(w3: Web3, running: RunningNode) -> None:
    filter_id = result(running, "eth_newBlockFilter")

    async def mine_and_poll() -> list[Any]:
        polls = [asyncio.to_thread(running.rpc, "eth_getFilterChanges", [filter_id]) for _ in range(10)]
        mines = [asyncio.to_thread(running.rpc, "evm_mine") for _ in range(10)]
        replies = await asyncio.gather(*polls, *mines)
        return [hash_ for reply in replies[:10] for hash_ in reply["result"]]

    seen = asyncio.run(mine_and_poll()) + result(running, "eth_getFilterChanges", [filter_id])

    assert len(seen) == 10
    assert len(set(seen)) == 10
