"""Contract calls, reverts and event logs through the node, with the Probe contract."""

from __future__ import annotations

import pytest
from chain_helpers import RunningNode
from eth_abi import encode as abi_encode
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError

from wagerlab.chain.accounts import dev_account

PROBE_REJECTED = keccak(text="ProbeRejected(uint256,address)")[:4]
STORED = keccak(text="Stored(uint256,address,uint256)")
PINGED = keccak(text="Pinged(bytes32)")


def topic(value: int | bytes) -> str:
    raw = value if isinstance(value, bytes) else value.to_bytes(32, "big")
    return "0x" + raw.rjust(32, b"\x00").hex()


def test_call_revert_returns_code_3_with_custom_error_data(running: RunningNode, probe: Contract) -> None:
    caller = dev_account(1).address
    call = {"from": caller, "to": probe.address, "data": probe.encode_abi("rejectCustom", [7])}

    error = running.rpc("eth_call", [call, "latest"])["error"]

    expected = PROBE_REJECTED + abi_encode(["uint256", "address"], [7, caller])
    assert error["code"] == 3
    assert error["message"] == "execution reverted"
    assert error["data"] == "0x" + expected.hex()


def test_call_revert_with_reason_string(running: RunningNode, probe: Contract) -> None:
    call = {"to": probe.address, "data": probe.encode_abi("rejectString", [])}

    error = running.rpc("eth_call", [call])["error"]

    assert error["code"] == 3
    assert error["message"] == "execution reverted: probe rejected"
    assert error["data"].startswith("0x08c379a0")


def test_web3_raises_decoded_contract_errors(probe: Contract) -> None:
    with pytest.raises(ContractCustomError) as custom:
        probe.functions.rejectCustom(9).call()
    with pytest.raises(ContractLogicError, match="probe rejected"):
        probe.functions.rejectString().call()

    assert custom.value.data.startswith("0x" + PROBE_REJECTED.hex())


def test_estimate_gas_revert_returns_code_3(running: RunningNode, probe: Contract) -> None:
    call = {"from": dev_account(1).address, "to": probe.address, "data": probe.encode_abi("storeThenReject", [5])}

    error = running.rpc("eth_estimateGas", [call])["error"]

    assert error["code"] == 3
    assert error["data"].startswith("0x" + PROBE_REJECTED.hex())


def test_reverting_transaction_with_explicit_gas_mines_status_0(w3: Web3, probe: Contract) -> None:
    total_before = probe.functions.total().call()
    number = w3.eth.block_number

    tx_hash = probe.functions.storeThenReject(5).transact({"gas": 100_000})
    receipt = w3.eth.get_transaction_receipt(tx_hash)

    assert receipt["status"] == 0
    assert receipt["blockNumber"] == number + 1
    assert receipt["logs"] == []
    assert probe.functions.total().call() == total_before


def test_reverting_raw_transaction_mines_status_0(w3: Web3, probe: Contract) -> None:
    sender = dev_account(4)
    tx = probe.functions.storeThenReject(5).build_transaction(
        {
            "from": sender.address,
            "gas": 100_000,
            "maxFeePerGas": 2 * 10**9,
            "maxPriorityFeePerGas": 10**9,
            "nonce": w3.eth.get_transaction_count(sender.address),
        }
    )

    tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)

    receipt = w3.eth.get_transaction_receipt(tx_hash)
    assert receipt["status"] == 0
    assert receipt["gasUsed"] < 100_000
    assert w3.eth.get_transaction_count(sender.address) == tx["nonce"] + 1


def test_event_logs_in_receipt(w3: Web3, probe: Contract) -> None:
    tx_hash = probe.functions.store(21, 500).transact()
    receipt = w3.eth.get_transaction_receipt(tx_hash)

    (event,) = probe.events.Stored().process_receipt(receipt)

    assert event["args"]["key"] == 21
    assert event["args"]["sender"] == w3.eth.default_account
    assert event["args"]["value"] == 500
    assert event["logIndex"] == 0
    assert receipt["logs"][0]["removed"] is False
    assert receipt["logsBloom"] != b"\x00" * 256


class TestGetLogs:
    @pytest.fixture(scope="class")
    def emitted(self, w3: Web3, probe_artifact: dict) -> dict:
        """Two Probe contracts; A stores keys 1 and 2, B stores key 1 and pings."""
        factory = w3.eth.contract(abi=probe_artifact["abi"], bytecode=probe_artifact["bytecode"])
        contracts = []
        for _ in range(2):
            receipt = w3.eth.wait_for_transaction_receipt(factory.constructor().transact())
            contracts.append(w3.eth.contract(address=receipt.contractAddress, abi=probe_artifact["abi"]))
        first = w3.eth.block_number + 1
        a, b = contracts
        a.functions.store(1, 10).transact()
        a.functions.store(2, 20).transact()
        b.functions.store(1, 30).transact()
        b.functions.ping(b"\x42" * 32).transact()
        return {"a": a.address, "b": b.address, "first": first, "last": w3.eth.block_number}

    def logs(self, w3: Web3, emitted: dict, **criteria: object) -> list:
        query = {"fromBlock": emitted["first"], "toBlock": emitted["last"], **criteria}
        return w3.eth.get_logs(query)  # type: ignore[arg-type]

    def test_address_list(self, w3: Web3, emitted: dict) -> None:
        assert len(self.logs(w3, emitted, address=emitted["a"])) == 2
        assert len(self.logs(w3, emitted, address=[emitted["a"], emitted["b"]])) == 4

    def test_topic_or_list(self, w3: Web3, emitted: dict) -> None:
        both = self.logs(w3, emitted, topics=[["0x" + STORED.hex(), "0x" + PINGED.hex()]])
        stored = self.logs(w3, emitted, topics=["0x" + STORED.hex()])

        assert len(both) == 4
        assert len(stored) == 3

    def test_null_topic_matches_any(self, w3: Web3, emitted: dict) -> None:
        key_one = self.logs(w3, emitted, topics=[None, topic(1)])
        key_one_or_two = self.logs(w3, emitted, topics=[None, [topic(1), topic(2)]])
        sender = self.logs(w3, emitted, topics=[None, None, topic(bytes.fromhex(w3.eth.default_account[2:]))])

        assert len(key_one) == 2
        assert len(key_one_or_two) == 3
        assert len(sender) == 3

    def test_block_range(self, w3: Web3, emitted: dict) -> None:
        first_two = w3.eth.get_logs({"fromBlock": emitted["first"], "toBlock": emitted["first"] + 1})
        before = w3.eth.get_logs({"fromBlock": emitted["first"] - 2, "toBlock": emitted["first"] - 1})

        assert [log["blockNumber"] for log in first_two] == [emitted["first"], emitted["first"] + 1]
        assert before == []

    def test_block_hash(self, w3: Web3, emitted: dict) -> None:
        block_hash = w3.eth.get_block(emitted["last"])["hash"]

        (log,) = w3.eth.get_logs({"blockHash": block_hash})

        assert log["topics"][0] == PINGED
        assert log["blockHash"] == block_hash

    def test_default_range_is_latest(self, w3: Web3, emitted: dict, probe: Contract) -> None:
        probe.functions.ping(b"\x01" * 32).transact()

        logs = w3.eth.get_logs({"address": probe.address})

        assert [log["blockNumber"] for log in logs] == [w3.eth.block_number]

    def test_reversed_range_is_invalid(self, running: RunningNode) -> None:
        error = running.rpc("eth_getLogs", [{"fromBlock": "0x5", "toBlock": "0x2"}])["error"]

        assert error["code"] == -32602
        assert "fromBlock" in error["message"]
