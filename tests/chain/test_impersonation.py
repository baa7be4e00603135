"""Impersonation: eth_sendTransaction from an address without its key, and how such
transactions survive reads, snapshots, reorgs, filters and the state file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from chain_helpers import RunningNode
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.contract import Contract
from websockets.sync.client import connect

from wagerlab.chain.accounts import dev_account, dev_roles
from wagerlab.chain.contracts import contract, transact
from wagerlab.chain.deploy import deploy_platform
from wagerlab.chain.errors import InvalidParams
from wagerlab.chain.node import Node
from wagerlab.chain.state import dump_state, load_state
from wagerlab.platform.config import Deployment

TRANSFER = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
STORED = "0x" + keccak(text="Stored(uint256,address,uint256)").hex()
ONE_ETHER = 10**18
TOKENS = 10**18


def address_of(label: str) -> str:
    """Return a checksummed address for `label` that no dev key controls."""
    return to_checksum_address(keccak(text=f"impersonation test {label}")[:20])


def topic(address: str) -> str:
    return "0x" + address[2:].lower().rjust(64, "0")


def result(running: RunningNode, method: str, *params: Any) -> Any:
    reply = running.rpc(method, list(params))
    assert "error" not in reply, f"{method} failed: {reply}"
    return reply["result"]


def send_as(running: RunningNode, sender: str, **fields: Any) -> dict[str, Any]:
    """Send a transaction from `sender` with eth_sendTransaction and return its receipt."""
    tx_hash = result(running, "eth_sendTransaction", {"from": sender, **fields})
    receipt = result(running, "eth_getTransactionReceipt", tx_hash)
    assert receipt is not None, f"transaction {tx_hash} was not mined"
    return receipt


def impersonate_funded(running: RunningNode, address: str) -> None:
    result(running, "anvil_impersonateAccount", address)
    result(running, "anvil_setBalance", address, hex(ONE_ETHER))


@pytest.fixture(scope="module")
def deployment(w3: Web3) -> Deployment:
    return deploy_platform(w3, dev_roles(), house_funding=1_000 * TOKENS)


@pytest.fixture(scope="module")
def token(w3: Web3, deployment: Deployment) -> Contract:
    return contract(w3, "WagerToken", deployment.token)


def mint(w3: Web3, token: Contract, holder: str, amount: int) -> None:
    receipt = transact(w3, dev_roles().operator, token.functions.mint(holder, amount), gas=200_000)
    assert receipt["status"] == 1


def token_transfer_data(token: Contract, recipient: str, amount: int) -> str:
    return token.encode_abi("transfer", [recipient, amount])


# ---------------------------------------------------------------------------
# Sending as an impersonated account


def test_impersonated_eth_transfer(running: RunningNode) -> None:
    sender = address_of("eth sender")
    recipient = address_of("eth recipient")
    impersonate_funded(running, sender)

    receipt = send_as(running, sender, to=recipient, value=hex(12345))

    assert receipt["status"] == "0x1"
    assert receipt["from"] == sender.lower()
    assert result(running, "eth_getBalance", recipient, "latest") == hex(12345)
    assert result(running, "eth_getTransactionCount", sender, "latest") == "0x1"
    fee = int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
    assert int(result(running, "eth_getBalance", sender, "latest"), 16) == ONE_ETHER - 12345 - fee


def test_impersonated_transaction_reads_back(running: RunningNode) -> None:
    sender = address_of("read back")
    impersonate_funded(running, sender)

    receipt = send_as(running, sender, to=address_of("read back recipient"), value="0x1")

    tx = result(running, "eth_getTransactionByHash", receipt["transactionHash"])
    by_number = result(running, "eth_getBlockByNumber", receipt["blockNumber"], True)
    by_hash = result(running, "eth_getBlockByHash", receipt["blockHash"], True)
    by_index = result(running, "eth_getTransactionByBlockHashAndIndex", receipt["blockHash"], "0x0")
    block_receipts = result(running, "eth_getBlockReceipts", receipt["blockNumber"])
    assert tx["from"] == sender.lower()
    assert [t["from"] for t in by_number["transactions"]] == [sender.lower()]
    assert [t["from"] for t in by_hash["transactions"]] == [sender.lower()]
    assert by_index["hash"] == receipt["transactionHash"]
    assert by_index["from"] == sender.lower()
    assert [r["from"] for r in block_receipts] == [sender.lower()]


def test_two_senders_distinct_hashes(running: RunningNode) -> None:
    first, second = address_of("twin 1"), address_of("twin 2")
    impersonate_funded(running, first)
    impersonate_funded(running, second)
    fields = {"to": address_of("twin recipient"), "value": "0x1", "gas": "0x5208", "maxFeePerGas": hex(10**10),
              "maxPriorityFeePerGas": hex(10**9)}

    first_receipt = send_as(running, first, **fields)
    second_receipt = send_as(running, second, **fields)

    assert first_receipt["transactionHash"] != second_receipt["transactionHash"]
    assert second_receipt["from"] == second.lower()


def test_impersonated_legacy_transaction(running: RunningNode) -> None:
    sender = address_of("legacy")
    impersonate_funded(running, sender)

    receipt = send_as(running, sender, to=address_of("legacy recipient"), value="0x2", gasPrice=hex(10**10))

    assert receipt["type"] == "0x0"
    assert receipt["from"] == sender.lower()
    assert result(running, "eth_getTransactionByHash", receipt["transactionHash"])["from"] == sender.lower()


def test_impersonated_token_holder_transfers(running: RunningNode, w3: Web3, token: Contract) -> None:
    holder = address_of("token holder")
    recipient = address_of("token recipient")
    mint(w3, token, holder, 50 * TOKENS)
    impersonate_funded(running, holder)

    receipt = send_as(running, holder, to=token.address, data=token_transfer_data(token, recipient, 20 * TOKENS))

    assert receipt["status"] == "0x1"
    (log,) = receipt["logs"]
    assert log["topics"] == [TRANSFER, topic(holder), topic(recipient)]
    assert token.functions.balanceOf(holder).call() == 30 * TOKENS
    assert token.functions.balanceOf(recipient).call() == 20 * TOKENS


def test_impersonated_contract_sends_tokens(running: RunningNode, token: Contract, deployment: Deployment) -> None:
    sportsbook = deployment.sportsbook
    recipient = address_of("escrow recipient")
    escrow = token.functions.balanceOf(sportsbook).call()
    code = result(running, "eth_getCode", sportsbook, "latest")
    impersonate_funded(running, sportsbook)

    receipt = send_as(running, sportsbook, to=token.address, data=token_transfer_data(token, recipient, 5 * TOKENS))

    assert receipt["status"] == "0x1"
    assert receipt["logs"][0]["topics"][1] == topic(sportsbook)
    assert token.functions.balanceOf(sportsbook).call() == escrow - 5 * TOKENS
    assert token.functions.balanceOf(recipient).call() == 5 * TOKENS
    assert result(running, "eth_getCode", sportsbook, "latest") == code


def test_impersonated_unfunded_sender_rejected(running: RunningNode) -> None:
    sender = address_of("unfunded")
    result(running, "anvil_impersonateAccount", sender)

    error = running.rpc("eth_sendTransaction", [{"from": sender, "to": sender, "value": "0x1"}])["error"]

    assert error["code"] == -32000
    assert "does not have enough balance" in error["message"]
    assert "has 0" in error["message"]


# ---------------------------------------------------------------------------
# Starting and stopping


def test_stop_impersonating_rejects_sender(running: RunningNode) -> None:
    sender = address_of("stopped")
    impersonate_funded(running, sender)
    send_as(running, sender, to=sender, value="0x1")

    assert result(running, "anvil_stopImpersonatingAccount", sender) is None
    error = running.rpc("eth_sendTransaction", [{"from": sender, "to": sender, "value": "0x1"}])["error"]

    assert error["code"] == -32602
    assert sender in error["message"]
    assert "anvil_impersonateAccount" in error["message"]


def test_hardhat_method_names(running: RunningNode) -> None:
    sender = address_of("hardhat")
    result(running, "hardhat_impersonateAccount", sender)
    result(running, "hardhat_setBalance", sender, hex(ONE_ETHER))

    assert send_as(running, sender, to=sender, value="0x1")["from"] == sender.lower()

    result(running, "hardhat_stopImpersonatingAccount", sender)
    assert running.rpc("eth_sendTransaction", [{"from": sender, "to": sender}])["error"]["code"] == -32602


def test_stop_unknown_address_is_no_error(running: RunningNode) -> None:
    assert result(running, "anvil_stopImpersonatingAccount", address_of("never impersonated")) is None


def test_auto_impersonate(running: RunningNode) -> None:
    sender = address_of("auto")
    result(running, "anvil_setBalance", sender, hex(ONE_ETHER))

    result(running, "anvil_autoImpersonateAccount", True)
    try:
        receipt = send_as(running, sender, to=sender, value="0x1")
    finally:
        result(running, "anvil_autoImpersonateAccount", False)

    assert receipt["from"] == sender.lower()
    assert running.rpc("eth_sendTransaction", [{"from": sender, "to": sender}])["error"]["code"] == -32602


@pytest.mark.parametrize(
    ("method", "params", "name"),
    [
        ("anvil_impersonateAccount", ["0x12"], "address"),
        ("anvil_impersonateAccount", [], "address"),
        ("anvil_stopImpersonatingAccount", ["not an address"], "address"),
        ("anvil_autoImpersonateAccount", ["yes"], "enabled"),
        ("anvil_autoImpersonateAccount", [], "enabled"),
    ],
)
def test_impersonation_invalid_params(running: RunningNode, method: str, params: list[Any], name: str) -> None:
    error = running.rpc(method, params)["error"]

    assert error["code"] == -32602
    assert f"invalid params: {name}:" in error["message"]


def test_dev_account_still_signs_normally(running: RunningNode) -> None:
    sender = dev_account(8).address
    result(running, "anvil_impersonateAccount", sender)
    try:
        receipt = send_as(running, sender, to=address_of("dev recipient"), value="0x1")
    finally:
        result(running, "anvil_stopImpersonatingAccount", sender)

    tx = result(running, "eth_getTransactionByHash", receipt["transactionHash"])
    assert tx["from"] == sender.lower()
    # An ECDSA signature, not the impersonation marker ("wagerlab" in r).
    assert "77616765726c6162" not in tx["r"]


# ---------------------------------------------------------------------------
# Raw transactions with the marker signature


def raw_transaction_of(running: RunningNode, tx_hash: str) -> str:
    """Return the signed bytes of a mined transaction, as a state file stores them."""
    number = int(result(running, "eth_getTransactionByHash", tx_hash)["blockNumber"], 16)
    (exported,) = [block for block in running.node.export_blocks() if block.number == number]
    (raw,) = [raw for raw in exported.transactions if keccak(raw) == bytes.fromhex(tx_hash[2:])]
    return "0x" + raw.hex()


def test_marked_raw_transaction_needs_impersonation(running: RunningNode) -> None:
    sender = address_of("raw")
    impersonate_funded(running, sender)
    snapshot = result(running, "evm_snapshot")
    receipt = send_as(running, sender, to=sender, value="0x1")
    raw = raw_transaction_of(running, receipt["transactionHash"])
    result(running, "evm_revert", snapshot)
    result(running, "anvil_stopImpersonatingAccount", sender)

    error = running.rpc("eth_sendRawTransaction", [raw])["error"]
    result(running, "anvil_impersonateAccount", sender)
    tx_hash = result(running, "eth_sendRawTransaction", raw)

    assert error["code"] == -32602
    assert sender in error["message"]
    assert tx_hash == receipt["transactionHash"]
    assert result(running, "eth_getTransactionReceipt", tx_hash)["from"] == sender.lower()


# ---------------------------------------------------------------------------
# Snapshots, reorgs and filters


def test_impersonated_block_survives_revert(running: RunningNode) -> None:
    sender = address_of("revert")
    impersonate_funded(running, sender)
    mined = send_as(running, sender, to=sender, value="0x1")
    # The snapshot's block holds `mined`, so reverting reads it back as the head.
    snapshot = result(running, "evm_snapshot")
    dropped = send_as(running, sender, to=sender, value="0x2")

    assert result(running, "evm_revert", snapshot) is True

    assert result(running, "eth_blockNumber") == mined["blockNumber"]
    assert result(running, "eth_getTransactionReceipt", mined["transactionHash"])["from"] == sender.lower()
    assert result(running, "eth_getTransactionReceipt", dropped["transactionHash"]) is None
    assert result(running, "eth_getTransactionCount", sender, "latest") == "0x1"
    again = send_as(running, sender, to=sender, value="0x3")
    assert again["from"] == sender.lower()
    assert result(running, "eth_getTransactionCount", sender, "latest") == "0x2"


def test_reorg_with_impersonated_transactions(running: RunningNode) -> None:
    sender = address_of("reorg")
    recipient = address_of("reorg recipient")
    impersonate_funded(running, sender)
    # The block under the reorg, which becomes the head again, holds an impersonated transaction.
    below = send_as(running, sender, to=recipient, value="0x1")
    dropped = send_as(running, sender, to=recipient, value="0x2")
    head = int(dropped["blockNumber"], 16)
    replacement = {"from": sender, "to": recipient, "value": "0x7"}

    assert result(running, "anvil_reorg", 1, [[replacement, 0]]) is None

    assert int(result(running, "eth_blockNumber"), 16) == head
    assert result(running, "eth_getTransactionReceipt", dropped["transactionHash"]) is None
    assert result(running, "eth_getTransactionReceipt", below["transactionHash"])["from"] == sender.lower()
    (new_tx,) = result(running, "eth_getBlockByNumber", hex(head), True)["transactions"]
    assert new_tx["from"] == sender.lower()
    assert new_tx["value"] == "0x7"
    assert new_tx["nonce"] == "0x1"
    assert result(running, "eth_getBalance", recipient, "latest") == hex(1 + 7)


def test_reorg_rejects_stopped_sender(running: RunningNode) -> None:
    sender = address_of("reorg stopped")
    impersonate_funded(running, sender)
    mined = send_as(running, sender, to=sender, value="0x1")
    head = result(running, "eth_getBlockByNumber", "latest", False)
    result(running, "anvil_stopImpersonatingAccount", sender)

    error = running.rpc("anvil_reorg", [1, [[{"from": sender, "to": sender, "value": "0x1"}, 0]]])["error"]

    assert error["code"] == -32602
    assert sender in error["message"]
    assert result(running, "eth_getBlockByNumber", "latest", False)["hash"] == head["hash"]
    assert result(running, "eth_getTransactionReceipt", mined["transactionHash"])["from"] == sender.lower()


def test_filter_impersonated_logs_removed(
    running: RunningNode, w3: Web3, token: Contract
) -> None:
    holder = address_of("filter holder")
    recipient = address_of("filter recipient")
    mint(w3, token, holder, 10 * TOKENS)
    impersonate_funded(running, holder)
    filter_id = result(running, "eth_newFilter", {"address": token.address, "topics": [TRANSFER, topic(holder)]})

    receipt = send_as(running, holder, to=token.address, data=token_transfer_data(token, recipient, TOKENS))
    added = result(running, "eth_getFilterChanges", filter_id)
    result(running, "anvil_reorg", 1, [])
    removed = result(running, "eth_getFilterChanges", filter_id)

    assert [log["transactionHash"] for log in added] == [receipt["transactionHash"]]
    assert [log["removed"] for log in removed] == [True]
    assert removed[0]["topics"][1] == topic(holder)
    assert token.functions.balanceOf(holder).call() == 10 * TOKENS


def test_log_subscription_sees_impersonated_transfer(running: RunningNode, w3: Web3, token: Contract) -> None:
    holder = address_of("subscription holder")
    recipient = address_of("subscription recipient")
    mint(w3, token, holder, 10 * TOKENS)
    impersonate_funded(running, holder)
    subscribe = {"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["logs", {"address": token.address}]}

    with connect(running.ws_url) as connection:
        connection.send(json.dumps(subscribe))
        subscription = json.loads(connection.recv(timeout=10))["result"]
        receipt = send_as(running, holder, to=token.address, data=token_transfer_data(token, recipient, TOKENS))
        message = json.loads(connection.recv(timeout=10))

    assert message["params"]["subscription"] == subscription
    log = message["params"]["result"]
    assert log["transactionHash"] == receipt["transactionHash"]
    assert log["topics"] == [TRANSFER, topic(holder), topic(recipient)]


def test_impersonated_transactions_with_automine_off(running: RunningNode) -> None:
    sender = address_of("automine off")
    impersonate_funded(running, sender)
    number = int(result(running, "eth_blockNumber"), 16)

    result(running, "evm_setAutomine", False)
    try:
        hashes = [result(running, "eth_sendTransaction", {"from": sender, "to": sender, "value": hex(v)}) for v in (1, 2)]
        pending = result(running, "eth_getBlockByNumber", "pending", True)
        result(running, "evm_mine")
    finally:
        result(running, "evm_setAutomine", True)

    assert [tx["from"] for tx in pending["transactions"]] == [sender.lower()] * 2
    block = result(running, "eth_getBlockByNumber", hex(number + 1), True)
    assert [tx["hash"] for tx in block["transactions"]] == hashes
    assert [tx["nonce"] for tx in block["transactions"]] == ["0x0", "0x1"]
    assert [tx["from"] for tx in block["transactions"]] == [sender.lower()] * 2


# ---------------------------------------------------------------------------
# State file


def test_state_file_replays_impersonated(tmp_path: Path, probe_artifact: dict[str, Any]) -> None:
    node = Node()
    dev = node.request("eth_accounts", [])[0]
    deploy_hash = node.request("eth_sendTransaction", [{"from": dev, "data": probe_artifact["bytecode"]}])
    probe = node.request("eth_getTransactionReceipt", [deploy_hash])["contractAddress"]
    sender = address_of("state")
    node.request("anvil_impersonateAccount", [sender])
    node.request("anvil_setBalance", [sender, hex(ONE_ETHER)])
    store = "0x" + keccak(text="store(uint256,uint256)")[:4].hex() + (5).to_bytes(32, "big").hex() * 2
    tx_hash = node.request("eth_sendTransaction", [{"from": sender, "to": probe, "data": store}])
    path = tmp_path / "chain.json"

    dump_state(node, path)
    loaded = load_state(path, accounts=10)

    original = node.request("eth_getTransactionReceipt", [tx_hash])
    replayed = loaded.request("eth_getTransactionReceipt", [tx_hash])
    assert replayed["from"] == sender.lower()
    assert replayed["status"] == "0x1"
    assert replayed["logs"][0]["topics"] == original["logs"][0]["topics"]
    assert replayed["logs"][0]["topics"][:3] == [STORED, "0x" + (5).to_bytes(32, "big").hex(), topic(sender)]
    for method, params in [("eth_getBalance", [sender, "latest"]), ("eth_getTransactionCount", [sender, "latest"])]:
        assert loaded.request(method, params) == node.request(method, params), method
    assert loaded.request("eth_getTransactionByHash", [tx_hash])["from"] == sender.lower()
    # The state file keeps the transactions, not the set of impersonated addresses.
    with pytest.raises(InvalidParams, match=sender):
        loaded.request("eth_sendTransaction", [{"from": sender, "to": sender}])
