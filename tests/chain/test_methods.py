"""Every read and write method over HTTP through web3.py, which parses each result."""

from __future__ import annotations

import pytest
from chain_helpers import RunningNode
from eth_account import Account
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import BlockNotFound, TransactionNotFound

from wagerlab.chain.accounts import DEV_ACCOUNT_COUNT, dev_account
from wagerlab.chain.node import CLIENT_VERSION

BLOCK_FIELDS = {
    "number", "hash", "parentHash", "nonce", "sha3Uncles", "logsBloom", "transactionsRoot",
    "stateRoot", "receiptsRoot", "miner", "difficulty", "extraData", "size", "gasLimit",
    "gasUsed", "timestamp", "transactions", "uncles", "baseFeePerGas", "mixHash",
}
RECEIPT_FIELDS = {
    "blockHash", "blockNumber", "contractAddress", "cumulativeGasUsed", "effectiveGasPrice",
    "from", "gasUsed", "logs", "logsBloom", "status", "to", "transactionHash",
    "transactionIndex", "type",
}


def send_transfer(w3: Web3, sender_index: int, value: int, gas: int = 21_000) -> HexBytes:
    sender = dev_account(sender_index)
    tx = {
        "to": dev_account(9).address,
        "value": value,
        "gas": gas,
        "maxFeePerGas": 2 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
        "chainId": w3.eth.chain_id,
    }
    return w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)


def test_node_identity(w3: Web3, running: RunningNode) -> None:
    assert w3.client_version == CLIENT_VERSION
    assert w3.eth.chain_id == running.node.chain_id
    assert w3.net.version == str(running.node.chain_id)
    assert w3.net.listening is True
    assert w3.eth.syncing is False


def test_accounts_are_funded_dev_keys(w3: Web3) -> None:
    accounts = w3.eth.accounts

    assert len(accounts) == DEV_ACCOUNT_COUNT
    assert accounts[0] == dev_account(1).address
    assert accounts[6] == dev_account(7).address
    assert w3.eth.get_balance(accounts[0]) > 10**21


def test_fee_methods(w3: Web3) -> None:
    latest = w3.eth.get_block("latest")

    assert w3.eth.max_priority_fee == 10**9
    assert w3.eth.gas_price >= 10**9
    history = w3.eth.fee_history(3, "latest", [10, 90])
    assert len(history["baseFeePerGas"]) == len(history["gasUsedRatio"]) + 1
    assert history["oldestBlock"] == max(0, latest["number"] - 2)
    assert all(len(rewards) == 2 for rewards in history["reward"])


def test_transfer_updates_balance_nonce_and_block(w3: Web3) -> None:
    sender = dev_account(2)
    before = w3.eth.get_balance(dev_account(9).address)
    nonce = w3.eth.get_transaction_count(sender.address)
    number = w3.eth.block_number

    tx_hash = send_transfer(w3, 2, 12_345)

    assert w3.eth.get_balance(dev_account(9).address) == before + 12_345
    assert w3.eth.get_transaction_count(sender.address) == nonce + 1
    assert w3.eth.get_transaction_count(sender.address, "pending") == nonce + 1
    assert w3.eth.block_number == number + 1
    assert w3.eth.get_balance(dev_account(9).address, number) == before


def test_transaction_and_receipt_fields(w3: Web3) -> None:
    tx_hash = send_transfer(w3, 3, 7)

    tx = w3.eth.get_transaction(tx_hash)
    receipt = w3.eth.get_transaction_receipt(tx_hash)

    assert tx["hash"] == tx_hash
    assert tx["from"] == dev_account(3).address
    assert tx["value"] == 7
    assert tx["type"] == 2
    assert tx["transactionIndex"] == 0
    assert RECEIPT_FIELDS <= set(receipt)
    assert receipt["status"] == 1
    assert receipt["gasUsed"] == 21_000
    assert receipt["blockNumber"] == tx["blockNumber"]
    assert receipt["effectiveGasPrice"] <= 2 * 10**9
    assert receipt["contractAddress"] is None
    assert receipt["logs"] == []


def test_unknown_transaction_is_null(w3: Web3, running: RunningNode) -> None:
    unknown = "0x" + "12" * 32

    assert running.rpc("eth_getTransactionReceipt", [unknown])["result"] is None
    assert running.rpc("eth_getTransactionByHash", [unknown])["result"] is None
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction_receipt(unknown)


@pytest.mark.parametrize("tag", ["latest", "earliest", "safe", "finalized"])
def test_block_by_tag(w3: Web3, tag: str) -> None:
    send_transfer(w3, 4, 1)

    block = w3.eth.get_block(tag)

    assert BLOCK_FIELDS <= set(block)
    expected_number = 0 if tag == "earliest" else w3.eth.block_number
    assert block["number"] == expected_number
    assert w3.eth.get_block(block["hash"]) == block


def test_pending_block_has_no_hash(running: RunningNode, w3: Web3) -> None:
    pending = running.rpc("eth_getBlockByNumber", ["pending", False])["result"]

    assert int(pending["number"], 16) == w3.eth.block_number + 1
    assert pending["hash"] is None
    assert pending["transactions"] == []


def test_block_with_full_transactions(w3: Web3) -> None:
    tx_hash = send_transfer(w3, 5, 3)
    number = w3.eth.get_transaction(tx_hash)["blockNumber"]

    hashes_only = w3.eth.get_block(number)
    full = w3.eth.get_block(number, full_transactions=True)

    assert hashes_only["transactions"] == [tx_hash]
    assert full["transactions"][0]["hash"] == tx_hash
    assert full["transactions"][0]["blockNumber"] == number
    assert full["parentHash"] == w3.eth.get_block(number - 1)["hash"]


def test_unknown_block_is_null(w3: Web3, running: RunningNode) -> None:
    assert running.rpc("eth_getBlockByNumber", ["0xffffff", False])["result"] is None
    assert running.rpc("eth_getBlockByHash", ["0x" + "34" * 32, False])["result"] is None
    with pytest.raises(BlockNotFound):
        w3.eth.get_block(10**6)


def test_send_transaction_for_dev_account(w3: Web3) -> None:
    accounts = w3.eth.accounts
    before = w3.eth.get_balance(accounts[8])

    tx_hash = w3.eth.send_transaction({"from": accounts[0], "to": accounts[8], "value": 99})

    assert w3.eth.get_transaction_receipt(tx_hash)["status"] == 1
    assert w3.eth.get_balance(accounts[8]) == before + 99


def test_send_transaction_rejects_unknown_account(running: RunningNode) -> None:
    stranger = Account.create().address
    tx = {"from": stranger, "to": stranger, "value": "0x1", "gas": "0x5208"}

    error = running.rpc("eth_sendTransaction", [tx])["error"]

    assert error["code"] == -32602
    assert f"no key for {stranger}" in error["message"]
    assert "eth_sendRawTransaction" in error["message"]


def test_send_raw_transaction_rejects_bad_nonce(w3: Web3, running: RunningNode) -> None:
    sender = dev_account(6)
    tx = {
        "to": sender.address,
        "value": 1,
        "gas": 21_000,
        "maxFeePerGas": 2 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "nonce": w3.eth.get_transaction_count(sender.address) + 5,
        "chainId": w3.eth.chain_id,
    }
    raw = "0x" + sender.sign_transaction(tx).raw_transaction.hex()
    number = w3.eth.block_number

    error = running.rpc("eth_sendRawTransaction", [raw])["error"]

    assert error["code"] == -32000
    assert "nonce" in error["message"].lower()
    assert w3.eth.block_number == number


def test_contract_code_storage_and_call(w3: Web3, probe: Contract) -> None:
    probe.functions.store(3, 41).transact()

    assert len(w3.eth.get_code(probe.address)) > 100
    assert w3.eth.get_code(dev_account(1).address) == b""
    assert probe.functions.values(3).call() == 41
    assert probe.functions.total().call() >= 41
    # `total` is slot 1 of Probe's storage layout.
    assert int.from_bytes(w3.eth.get_storage_at(probe.address, 1), "big") == probe.functions.total().call()


def test_call_without_sender_or_fees(running: RunningNode, probe: Contract) -> None:
    data = probe.encode_abi("total", [])

    result = running.rpc("eth_call", [{"to": probe.address, "data": data}, "latest"])

    assert "result" in result
    assert len(result["result"]) == 66


def test_estimate_gas(w3: Web3, probe: Contract) -> None:
    transfer = w3.eth.estimate_gas({"to": dev_account(9).address, "value": 1})
    store = probe.functions.store(11, 5).estimate_gas()

    assert transfer == 21_000
    assert 40_000 < store < 200_000
    tx_hash = probe.functions.store(11, 5).transact({"gas": store})
    assert w3.eth.get_transaction_receipt(tx_hash)["status"] == 1


def test_contract_deploy_receipt(w3: Web3, probe_artifact: dict) -> None:
    factory = w3.eth.contract(abi=probe_artifact["abi"], bytecode=probe_artifact["bytecode"])

    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor().transact())

    assert receipt["to"] is None
    assert receipt["contractAddress"] is not None
    assert w3.eth.get_code(receipt["contractAddress"]) != b""
