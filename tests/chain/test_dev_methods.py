"""Development methods: mining, snapshots and time control."""

from __future__ import annotations

import time

from chain_helpers import RunningNode
from web3 import Web3
from web3.contract import Contract

from wagerlab.chain.accounts import dev_account


def test_evm_mine_adds_empty_block(w3: Web3, running: RunningNode) -> None:
    number = w3.eth.block_number

    assert running.rpc("evm_mine")["result"] == "0x0"

    block = w3.eth.get_block("latest")
    assert block["number"] == number + 1
    assert block["transactions"] == []


def test_snapshot_and_revert(w3: Web3, running: RunningNode, probe: Contract) -> None:
    probe.functions.store(77, 1).transact()
    snapshot = running.rpc("evm_snapshot")["result"]
    number = w3.eth.block_number
    balance = w3.eth.get_balance(dev_account(9).address)

    tx_hash = probe.functions.store(77, 2).transact()
    w3.eth.send_transaction({"to": dev_account(9).address, "value": 1_000})
    assert probe.functions.values(77).call() == 2

    assert running.rpc("evm_revert", [snapshot])["result"] is True

    assert w3.eth.block_number == number
    assert probe.functions.values(77).call() == 1
    assert w3.eth.get_balance(dev_account(9).address) == balance
    assert running.rpc("eth_getTransactionReceipt", ["0x" + tx_hash.hex()])["result"] is None
    # A snapshot is consumed by reverting to it.
    assert running.rpc("evm_revert", [snapshot])["result"] is False


def test_revert_to_block_with_balance_edit(w3: Web3, running: RunningNode) -> None:
    address = "0x" + "ab" * 20
    running.rpc("anvil_setBalance", [address, hex(4242)])
    snapshot = running.rpc("evm_snapshot")["result"]
    number = w3.eth.block_number
    running.rpc("anvil_setBalance", [address, hex(1)])
    w3.eth.send_transaction({"to": dev_account(9).address, "value": 1})

    reply = running.rpc("evm_revert", [snapshot])

    assert reply["result"] is True
    assert w3.eth.block_number == number
    assert w3.eth.get_balance(Web3.to_checksum_address(address)) == 4242
    w3.eth.send_transaction({"to": dev_account(9).address, "value": 1})
    assert w3.eth.block_number == number + 1


def test_chain_continues_after_revert(w3: Web3, running: RunningNode) -> None:
    snapshot = running.rpc("evm_snapshot")["result"]
    w3.eth.send_transaction({"to": dev_account(9).address, "value": 1})
    running.rpc("evm_revert", [snapshot])
    number = w3.eth.block_number

    tx_hash = w3.eth.send_transaction({"to": dev_account(9).address, "value": 2})

    receipt = w3.eth.get_transaction_receipt(tx_hash)
    assert receipt["blockNumber"] == number + 1
    assert w3.eth.get_block(number + 1)["transactions"] == [tx_hash]


def test_revert_unknown_snapshot_returns_false(running: RunningNode) -> None:
    assert running.rpc("evm_revert", ["0x999"])["result"] is False


def test_increase_time_moves_next_block(w3: Web3, running: RunningNode, probe: Contract) -> None:
    before = w3.eth.get_block("latest")["timestamp"]

    running.rpc("evm_increaseTime", [3600])
    running.rpc("evm_mine")

    after = w3.eth.get_block("latest")["timestamp"]
    assert after >= before + 3600
    assert after >= int(time.time()) + 3600 - 5
    assert after < int(time.time()) + 3600 + 60
    assert probe.functions.currentTime().call() == after


def test_increase_time_accepts_hex(running: RunningNode) -> None:
    offset = int(running.rpc("evm_increaseTime", ["0x0"])["result"], 16)

    assert offset >= 3600


def test_set_next_block_timestamp(w3: Web3, running: RunningNode, probe: Contract) -> None:
    target = w3.eth.get_block("latest")["timestamp"] + 10_000

    running.rpc("evm_setNextBlockTimestamp", [target])
    tx_hash = probe.functions.ping(b"\x07" * 32).transact()

    block = w3.eth.get_block(w3.eth.get_transaction_receipt(tx_hash)["blockNumber"])
    assert block["timestamp"] == target
    running.rpc("evm_mine")
    assert w3.eth.get_block("latest")["timestamp"] > target


def test_set_next_block_timestamp_rejects_past(w3: Web3, running: RunningNode) -> None:
    latest = w3.eth.get_block("latest")["timestamp"]

    error = running.rpc("evm_setNextBlockTimestamp", [latest])["error"]

    assert error["code"] == -32602
    assert str(latest) in error["message"]


def test_evm_mine_with_timestamp(w3: Web3, running: RunningNode) -> None:
    target = w3.eth.get_block("latest")["timestamp"] + 500

    running.rpc("evm_mine", [hex(target)])

    assert w3.eth.get_block("latest")["timestamp"] == target
