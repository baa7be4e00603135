"""eth_sendTransaction's fee fields, `type`, intrinsic gas and parameter counts.

anvil 1.7.1 behaves differently in these cases, so they are not in the conformance suite.
anvil ignores `type` and mines a dynamic fee transaction for 0x0, 0x1 and unknown types
alike. It mines a request with both gasPrice and maxFeePerGas as legacy and drops
maxFeePerGas. The node follows the request's `type` and rejects what it cannot honour.
"""

from __future__ import annotations

from typing import Any

import pytest
from chain_helpers import RunningNode
from eth_account import Account
from web3 import Web3

from wagerlab.chain.accounts import dev_account
from wagerlab.chain.node import Node
from wagerlab.chain.params import PARAMETERS

RECIPIENT = dev_account(9).address
SLOT_KEY = "0x" + "00" * 31 + "07"


def _send(running: RunningNode, **fields: Any) -> dict[str, Any]:
    sender = fields.pop("sender", None)
    tx = {"to": RECIPIENT, "value": "0x1", **fields}
    if sender is not None:
        tx["from"] = sender
    return running.rpc("eth_sendTransaction", [tx])


def _mined(running: RunningNode, reply: dict[str, Any]) -> dict[str, Any]:
    assert "error" not in reply, reply
    tx = running.rpc("eth_getTransactionByHash", [reply["result"]])["result"]
    assert tx["blockNumber"] is not None
    return tx


# ---------------------------------------------------------------------------
# Fee styles and transaction types


@pytest.mark.parametrize("dynamic_field", ["maxFeePerGas", "maxPriorityFeePerGas"])
def test_send_rejects_both_fee_styles(w3: Web3, running: RunningNode, dynamic_field: str) -> None:
    number = w3.eth.block_number

    error = _send(running, sender=w3.eth.accounts[0], gasPrice="0x3b9aca00", **{dynamic_field: "0x77359400"})["error"]

    assert error["code"] == -32602
    assert f"gasPrice and {dynamic_field} were both given" in error["message"]
    assert "not both" in error["message"]
    assert w3.eth.block_number == number


def test_call_rejects_both_fee_styles(running: RunningNode) -> None:
    call = {"to": RECIPIENT, "gasPrice": "0x1", "maxFeePerGas": "0x1"}

    error = running.rpc("eth_call", [call, "latest"])["error"]

    assert error["code"] == -32602
    assert "gasPrice and maxFeePerGas" in error["message"]


@pytest.mark.parametrize(("requested", "mined"), [("0x0", "0x0"), ("0x00", "0x0"), ("0x1", "0x1"), ("0x2", "0x2")])
def test_send_follows_type(w3: Web3, running: RunningNode, requested: str, mined: str) -> None:
    tx = _mined(running, _send(running, sender=w3.eth.accounts[0], type=requested))

    assert tx["type"] == mined
    assert ("maxFeePerGas" in tx) == (mined == "0x2")
    assert ("accessList" in tx) == (mined != "0x0")
    receipt = running.rpc("eth_getTransactionReceipt", [tx["hash"]])["result"]
    assert receipt["type"] == mined
    assert receipt["status"] == "0x1"


def test_send_legacy_type_pays_gas_price(w3: Web3, running: RunningNode) -> None:
    gas_price = w3.eth.gas_price

    tx = _mined(running, _send(running, sender=w3.eth.accounts[0], type="0x0"))

    assert int(tx["gasPrice"], 16) == gas_price
    assert "maxFeePerGas" not in tx


def test_send_access_list_transaction(w3: Web3, running: RunningNode) -> None:
    access_list = [{"address": RECIPIENT.lower(), "storageKeys": [SLOT_KEY]}]

    reply = _send(running, sender=w3.eth.accounts[0], type="0x1", accessList=access_list, gasPrice="0x77359400")
    tx = _mined(running, reply)

    assert tx["type"] == "0x1"
    assert tx["gasPrice"] == "0x77359400"
    assert tx["accessList"] == access_list
    # 21000 for the transfer, 2400 for the listed address and 1900 for its slot (EIP-2930).
    assert running.rpc("eth_getTransactionReceipt", [tx["hash"]])["result"]["gasUsed"] == hex(21000 + 2400 + 1900)


def test_send_access_list_without_type(w3: Web3, running: RunningNode) -> None:
    access_list = [{"address": RECIPIENT.lower(), "storageKeys": []}]

    sender = w3.eth.accounts[0]
    with_gas_price = _mined(running, _send(running, sender=sender, accessList=access_list, gasPrice="0x77359400"))
    without_fees = _mined(running, _send(running, sender=sender, accessList=access_list))

    assert with_gas_price["type"] == "0x1"
    assert without_fees["type"] == "0x2"
    assert without_fees["accessList"] == access_list


def test_impersonated_sender_keeps_type(w3: Web3, running: RunningNode) -> None:
    sender = Account.create().address
    running.rpc("anvil_impersonateAccount", [sender])
    running.rpc("anvil_setBalance", [sender, hex(10**18)])

    legacy = _mined(running, _send(running, sender=sender, type="0x0"))
    access_list = _mined(running, _send(running, sender=sender, type="0x1"))

    assert (legacy["type"], legacy["from"]) == ("0x0", sender.lower())
    assert (access_list["type"], access_list["from"]) == ("0x1", sender.lower())


@pytest.mark.parametrize("type_id", ["0x3", "0x4", "0x7"])
def test_send_rejects_unsupported_type(w3: Web3, running: RunningNode, type_id: str) -> None:
    number = w3.eth.block_number

    error = _send(running, sender=w3.eth.accounts[0], type=type_id)["error"]

    assert error["code"] == -32602
    assert f"transaction.type: unsupported transaction type {type_id}" in error["message"]
    assert "0x0 (legacy), 0x1 (access list), 0x2 (dynamic fee)" in error["message"]
    assert w3.eth.block_number == number


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"type": "0x0", "maxFeePerGas": "0x1"}, "type 0x0 (legacy) transaction takes gasPrice, not maxFeePerGas"),
        ({"type": "0x1", "maxPriorityFeePerGas": "0x1"}, "type 0x1 (access list) transaction takes gasPrice"),
        ({"type": "0x2", "gasPrice": "0x1"}, "type 0x2 (dynamic fee) transaction takes maxFeePerGas"),
        ({"type": "0x0", "accessList": []}, "type 0x0 (legacy) transaction has no access list"),
        ({"type": 2}, "expected a hex quantity"),
        ({"accessList": {"address": RECIPIENT}}, "transaction.accessList: expected a list"),
        ({"accessList": [{"storageKeys": []}]}, "transaction.accessList[0].address"),
        ({"accessList": [{"address": RECIPIENT, "storageKeys": ["0x07"]}]}, "storageKeys[0]: expected 32 bytes"),
    ],
)
def test_send_rejects_conflicting_fields(running: RunningNode, fields: dict[str, Any], expected: str) -> None:
    error = _send(running, sender=dev_account(1).address, **fields)["error"]

    assert error["code"] == -32602
    assert expected in error["message"]


# ---------------------------------------------------------------------------
# Sender and gas limit


def test_send_without_sender_uses_first_account(w3: Web3, running: RunningNode) -> None:
    first = w3.eth.accounts[0]
    nonce = w3.eth.get_transaction_count(first)

    tx = _mined(running, _send(running))

    assert tx["from"] == first.lower()
    assert w3.eth.get_transaction_count(first) == nonce + 1


def test_reorg_object_without_sender(w3: Web3, running: RunningNode) -> None:
    running.rpc("evm_mine", [])
    number = w3.eth.block_number

    assert running.rpc("anvil_reorg", [1, [[{"to": RECIPIENT, "value": "0x5"}, 0]]])["result"] is None

    (tx,) = w3.eth.get_block(number, full_transactions=True)["transactions"]
    assert tx["from"] == w3.eth.accounts[0]
    assert tx["value"] == 5


def test_reorg_object_gas_below_intrinsic(w3: Web3, running: RunningNode) -> None:
    running.rpc("evm_mine", [])
    head = w3.eth.get_block("latest")["hash"]

    error = running.rpc("anvil_reorg", [1, [[{"to": RECIPIENT, "gas": "0x5207"}, 0]]])["error"]

    assert error["code"] == -32000
    assert "the gas limit 20999 is below the intrinsic gas 21000" in error["message"]
    assert w3.eth.get_block("latest")["hash"] == head


def test_call_without_sender_stays_zero_address(running: RunningNode) -> None:
    # A call from the zero address needs no funds; the first dev account is only the
    # default signer of eth_sendTransaction.
    reply = running.rpc("eth_estimateGas", [{"to": RECIPIENT, "value": "0x0"}])

    assert reply["result"] == hex(21000)


@pytest.mark.parametrize(("gas", "data", "intrinsic"), [(1, "0x", 21000), (20999, "0x", 21000), (21000, "0x01", 21016)])
def test_send_gas_below_intrinsic(w3: Web3, running: RunningNode, gas: int, data: str, intrinsic: int) -> None:
    number = w3.eth.block_number

    error = _send(running, sender=w3.eth.accounts[0], gas=hex(gas), data=data)["error"]

    assert error["code"] == -32000
    assert error["message"].startswith("intrinsic gas too low")
    assert f"the gas limit {gas} is below the intrinsic gas {intrinsic}" in error["message"]
    assert f"at least {intrinsic}" in error["message"]
    assert w3.eth.block_number == number


def test_send_gas_at_intrinsic(w3: Web3, running: RunningNode) -> None:
    tx = _mined(running, _send(running, sender=w3.eth.accounts[0], gas=hex(21016), data="0x01"))

    assert tx["gas"] == hex(21016)


def test_raw_transaction_gas_below_intrinsic(w3: Web3, running: RunningNode) -> None:
    sender = dev_account(5)
    tx = {
        "to": RECIPIENT,
        "value": 1,
        "gas": 20_000,
        "maxFeePerGas": 2 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "nonce": w3.eth.get_transaction_count(sender.address),
        "chainId": w3.eth.chain_id,
    }
    raw = "0x" + sender.sign_transaction(tx).raw_transaction.hex()

    error = running.rpc("eth_sendRawTransaction", [raw])["error"]

    assert error["code"] == -32000
    assert "the gas limit 20000 is below the intrinsic gas 21000" in error["message"]


# ---------------------------------------------------------------------------
# Parameter counts


def test_parameter_table_covers_methods() -> None:
    assert set(PARAMETERS) == set(Node(accounts=1).methods)


@pytest.mark.parametrize(
    ("method", "params", "expected"),
    [
        ("eth_chainId", ["extra"], "eth_chainId takes no parameters but got 1; remove the extra values ['extra']"),
        ("eth_getBalance", [RECIPIENT, "latest", "x"], "takes at most 2 parameters (address, block) but got 3"),
        ("eth_call", [{"to": RECIPIENT}, "latest", {}], "eth_call takes at most 2 parameters (transaction, block)"),
    ],
)
def test_extra_params_message(running: RunningNode, method: str, params: list[Any], expected: str) -> None:
    error = running.rpc(method, params)["error"]

    assert error["code"] == -32602
    assert expected in error["message"]


def test_optional_params_may_be_left_out(running: RunningNode) -> None:
    assert running.rpc("eth_getBalance", [RECIPIENT])["result"].startswith("0x")
    assert running.rpc("anvil_mine", [])["result"] is None
