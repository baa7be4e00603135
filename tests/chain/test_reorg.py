"""anvil_reorg: replaced blocks, dropped receipts, removed logs to subscribers and filters."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from chain_helpers import RunningNode
from eth_utils import keccak
from web3 import AsyncWeb3, Web3, WebSocketProvider
from web3.contract import Contract

from wagerlab.chain.accounts import dev_account

STORED = "0x" + keccak(text="Stored(uint256,address,uint256)").hex()


def signed_store(w3: Web3, probe: Contract, key: int, value: int, nonce_offset: int = 0) -> str:
    """Sign `probe.store(key, value)` from dev account 2 and return the raw transaction."""
    sender = dev_account(2)
    tx = probe.functions.store(key, value).build_transaction(
        {
            "from": sender.address,
            "gas": 100_000,
            "maxFeePerGas": 10 * 10**9,
            "maxPriorityFeePerGas": 10**9,
            "nonce": w3.eth.get_transaction_count(sender.address) + nonce_offset,
            "chainId": w3.eth.chain_id,
        }
    )
    return "0x" + sender.sign_transaction(tx).raw_transaction.hex()


def test_reorg_replaces_blocks(w3: Web3, running: RunningNode, probe: Contract) -> None:
    kept = probe.functions.store(100, 1).transact()
    first_dropped = probe.functions.store(101, 1).transact()
    second_dropped = probe.functions.store(102, 1).transact()
    head = w3.eth.block_number
    old_hashes = [w3.eth.get_block(n)["hash"] for n in (head - 2, head - 1, head)]
    replacement = signed_store(w3, probe, 103, 7)

    reply = running.rpc("anvil_reorg", [2, [[replacement, 1]]])

    assert reply == {"jsonrpc": "2.0", "id": 1, "result": None}
    assert w3.eth.block_number == head
    assert w3.eth.get_block(head - 2)["hash"] == old_hashes[0]
    assert w3.eth.get_block(head - 1)["hash"] != old_hashes[1]
    assert w3.eth.get_block(head)["hash"] != old_hashes[2]
    assert w3.eth.get_block(head - 1)["transactions"] == []
    assert w3.eth.get_transaction_receipt(kept)["blockNumber"] == head - 2
    assert running.rpc("eth_getTransactionReceipt", ["0x" + first_dropped.hex()])["result"] is None
    assert running.rpc("eth_getTransactionReceipt", ["0x" + second_dropped.hex()])["result"] is None
    receipt = w3.eth.get_transaction_receipt(keccak(hexstr=replacement))
    assert receipt["blockNumber"] == head
    assert receipt["blockHash"] == w3.eth.get_block(head)["hash"]
    assert probe.functions.values(101).call() == 0
    assert probe.functions.values(103).call() == 7


def test_reorg_keeps_timestamps_and_parent_links(w3: Web3, running: RunningNode) -> None:
    for _ in range(3):
        running.rpc("evm_mine")
    head = w3.eth.block_number
    old = [w3.eth.get_block(n) for n in range(head - 2, head + 1)]

    running.rpc("anvil_reorg", ["0x3", []])

    new = [w3.eth.get_block(n) for n in range(head - 2, head + 1)]
    assert [b["timestamp"] for b in new] == [b["timestamp"] for b in old]
    assert new[0]["parentHash"] == old[0]["parentHash"]
    assert new[1]["parentHash"] == new[0]["hash"]
    assert new[2]["parentHash"] == new[1]["hash"]
    assert all(n["hash"] != o["hash"] for n, o in zip(new, old))


def test_reorg_accepts_transaction_objects(w3: Web3, running: RunningNode, probe: Contract) -> None:
    probe.functions.store(110, 1).transact()
    head = w3.eth.block_number
    data = probe.functions.store(111, 5).build_transaction({"from": w3.eth.accounts[0], "gas": 100_000})["data"]

    running.rpc("anvil_reorg", [1, [[{"from": w3.eth.accounts[0], "to": probe.address, "data": data}, 0]]])

    assert w3.eth.block_number == head
    assert len(w3.eth.get_block(head)["transactions"]) == 1
    assert probe.functions.values(110).call() == 0
    assert probe.functions.values(111).call() == 5


def test_reorg_onto_block_with_balance_edit(w3: Web3, running: RunningNode) -> None:
    address = Web3.to_checksum_address("0x" + "cd" * 20)
    running.rpc("anvil_setBalance", [address, hex(777)])
    fork = w3.eth.get_block("latest")
    w3.eth.send_transaction({"to": dev_account(9).address, "value": 1})

    reply = running.rpc("anvil_reorg", [1, []])

    assert reply["result"] is None
    assert w3.eth.get_block(fork["number"])["hash"] == fork["hash"]
    assert w3.eth.get_block("latest")["parentHash"] == fork["hash"]
    assert w3.eth.get_balance(address) == 777


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([0, []], "depth"),
        ([10**6, []], "depth"),
        ([1, [["0x00", 1]]], "blockOffset"),
        ([1, [["0x"]]], "txBlockPairs[0]"),
        ([1, [["nothex", 0]]], "txBlockPairs[0].tx"),
        ([1, "bad"], "txBlockPairs"),
    ],
)
def test_reorg_invalid_params(running: RunningNode, params: list[Any], message: str) -> None:
    running.rpc("evm_mine")
    head = running.rpc("eth_getBlockByNumber", ["latest", False])["result"]["hash"]

    error = running.rpc("anvil_reorg", params)["error"]

    assert error["code"] == -32602
    assert message in error["message"]
    assert running.rpc("eth_getBlockByNumber", ["latest", False])["result"]["hash"] == head


def test_reorg_failing_transaction_restores_chain(w3: Web3, running: RunningNode, probe: Contract) -> None:
    probe.functions.store(120, 1).transact()
    head = w3.eth.get_block("latest")
    wrong_nonce = signed_store(w3, probe, 121, 1, nonce_offset=5)

    error = running.rpc("anvil_reorg", [1, [[wrong_nonce, 0]]])["error"]

    assert error["code"] == -32000
    assert "nonce" in error["message"].lower()
    assert w3.eth.get_block("latest")["hash"] == head["hash"]
    assert probe.functions.values(120).call() == 1
    w3.eth.send_transaction({"to": dev_account(9).address, "value": 1})
    assert w3.eth.block_number == head["number"] + 1


def test_reorg_sends_removed_logs_to_subscribers(w3: Web3, running: RunningNode, probe: Contract) -> None:
    async def scenario() -> tuple[dict[str, str], list[dict[str, Any]]]:
        async with AsyncWeb3(WebSocketProvider(running.ws_url)) as aw3:
            subscriptions = {
                "logs": await aw3.eth.subscribe("logs", {"address": probe.address, "topics": [STORED]}),
                "heads": await aw3.eth.subscribe("newHeads"),
            }
            await asyncio.to_thread(probe.functions.store(130, 1).transact)
            await asyncio.to_thread(probe.functions.store(131, 1).transact)
            replacement = await asyncio.to_thread(signed_store, w3, probe, 132, 1)
            await asyncio.to_thread(running.rpc, "anvil_reorg", [2, [[replacement, 0]]])
            return subscriptions, await collect(aw3, 9)

    subscriptions, messages = asyncio.run(scenario())

    logs = [m["result"] for m in messages if m["subscription"] == subscriptions["logs"]]
    heads = [m["result"] for m in messages if m["subscription"] == subscriptions["heads"]]
    keys = [int.from_bytes(log["topics"][1], "big") for log in logs]
    assert keys == [130, 131, 131, 130, 132]
    assert [log["removed"] for log in logs] == [False, False, True, True, False]
    assert logs[2]["blockHash"] == logs[1]["blockHash"]
    assert logs[3]["blockHash"] == logs[0]["blockHash"]
    assert logs[4]["blockNumber"] == logs[0]["blockNumber"]
    assert logs[4]["blockHash"] != logs[0]["blockHash"]
    assert len(heads) == 4
    assert [h["number"] for h in heads[2:]] == [h["number"] for h in heads[:2]]
    assert heads[2]["parentHash"] == heads[0]["parentHash"]
    assert heads[3]["hash"] == w3.eth.get_block("latest")["hash"]


def test_reorg_sends_removed_logs_to_filters(w3: Web3, running: RunningNode, probe: Contract) -> None:
    log_filter = running.rpc("eth_newFilter", [{"address": probe.address}])["result"]
    block_filter = running.rpc("eth_newBlockFilter")["result"]
    probe.functions.store(140, 1).transact()

    running.rpc("anvil_reorg", [1, []])

    logs = running.rpc("eth_getFilterChanges", [log_filter])["result"]
    assert [log["removed"] for log in logs] == [False, True]
    assert logs[0]["transactionHash"] == logs[1]["transactionHash"]
    hashes = running.rpc("eth_getFilterChanges", [block_filter])["result"]
    assert len(hashes) == 2
    assert hashes[1] == running.rpc("eth_getBlockByNumber", ["latest", False])["result"]["hash"]
    assert running.rpc("eth_getFilterLogs", [log_filter])["result"] == []


async def collect(w3: AsyncWeb3, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        messages = []
        async for message in w3.socket.process_subscriptions():
            messages.append(message)
            if len(messages) == count:
                break
        return messages

    return await asyncio.wait_for(read(), timeout)
