"""Block contents by number, hash and index, for blocks that exist and blocks that do not."""

from __future__ import annotations

from typing import Any

import pytest
from chain_helpers import RunningNode
from web3 import Web3

UNKNOWN_HASH = "0x" + "ee" * 32


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("eth_getBlockTransactionCountByNumber", ["0xffffff"]),
        ("eth_getBlockTransactionCountByHash", [UNKNOWN_HASH]),
        ("eth_getUncleCountByBlockHash", [UNKNOWN_HASH]),
        ("eth_getTransactionByBlockNumberAndIndex", ["0xffffff", "0x0"]),
        ("eth_getTransactionByBlockHashAndIndex", [UNKNOWN_HASH, "0x0"]),
        ("eth_getBlockReceipts", [UNKNOWN_HASH]),
    ],
)
def test_unknown_block_is_null(running: RunningNode, method: str, params: list[Any]) -> None:
    assert running.rpc(method, params) == {"jsonrpc": "2.0", "id": 1, "result": None}


@pytest.mark.parametrize(
    ("method", "params", "name"),
    [
        ("eth_getBlockTransactionCountByHash", ["0x12"], "hash"),
        ("eth_getTransactionByBlockNumberAndIndex", ["latest", "zero"], "index"),
        ("eth_getBlockReceipts", ["soon"], "block"),
        ("web3_sha3", ["hello"], "data"),
    ],
)
def test_block_methods_invalid_params(running: RunningNode, method: str, params: list[Any], name: str) -> None:
    error = running.rpc(method, params)["error"]

    assert error["code"] == -32602
    assert f"invalid params: {name}" in error["message"]


def test_web3_block_helpers(w3: Web3) -> None:
    tx_hash = w3.eth.send_transaction({"to": w3.eth.accounts[9], "value": 1})
    receipt = w3.eth.get_transaction_receipt(tx_hash)

    assert w3.eth.get_block_transaction_count(receipt.blockNumber) == 1
    assert w3.eth.get_transaction_by_block(receipt.blockHash, 0)["hash"] == tx_hash
    assert w3.eth.get_block_receipts(receipt.blockNumber)[0]["transactionHash"] == tx_hash
