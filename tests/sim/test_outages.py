"""The reorg fault on a real node, and the runner's retry of node errors during `rpc_faults`."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_utils import keccak
from web3 import Web3
from web3.exceptions import Web3RPCError
from web3.providers import BaseProvider
from web3.types import RPCEndpoint, RPCResponse

from wagerlab.chain.accounts import dev_account
from wagerlab.chain.errors import NodeError
from wagerlab.chain.node import Node
from wagerlab.platform.db import ChainEvent, create_tables, make_engine, write_session
from wagerlab.sim import outages
from wagerlab.sim.outages import OutageError, RetryInternalErrors, raw_transaction, reorg

RECIPIENT = "0x" + "42" * 20


class NodeProvider(BaseProvider):
    """Calls the node in this process, with the same JSON encoding its server uses."""

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        try:
            return {"jsonrpc": "2.0", "id": 1, "result": self.node.request(method, list(params))}
        except NodeError as err:
            return {"jsonrpc": "2.0", "id": 1, "error": err.to_json()}  # type: ignore[typeddict-item]


@pytest.fixture
def w3() -> Web3:
    return Web3(NodeProvider(Node()))


def send_signed(w3: Web3, index: int, *, legacy: bool = False) -> bytes:
    """Sign a 1-wei transfer with dev account `index`, send it, and return its raw bytes."""
    account = dev_account(index)
    tx: dict[str, Any] = {
        "to": RECIPIENT,
        "value": 1,
        "gas": 21_000,
        "nonce": w3.eth.get_transaction_count(account.address),
        "chainId": w3.eth.chain_id,
    }
    if legacy:
        tx["gasPrice"] = w3.eth.gas_price * 2
    else:
        tx.update(maxFeePerGas=w3.eth.gas_price * 2, maxPriorityFeePerGas=1)
    raw = bytes(account.sign_transaction(tx).raw_transaction)
    w3.eth.send_raw_transaction(raw)
    return raw


@pytest.mark.parametrize("legacy", [False, True])
def test_raw_transaction_round_trips(w3: Web3, legacy: bool) -> None:
    raw = send_signed(w3, 4, legacy=legacy)

    rebuilt = raw_transaction(w3.eth.get_transaction(keccak(raw)))

    assert rebuilt == raw


def test_reorg_mines_transactions_again(w3: Web3) -> None:
    raws = [send_signed(w3, 4), send_signed(w3, 5, legacy=True), send_signed(w3, 6)]
    head = w3.eth.block_number
    old_hashes = [w3.eth.get_block(number)["hash"] for number in range(head - 1, head + 1)]
    old_blocks = {keccak(raw): w3.eth.get_transaction_receipt(keccak(raw))["blockNumber"] for raw in raws}

    first, depth, mined_again = reorg(w3, 2)

    assert (first, depth, mined_again) == (head - 1, 2, 2)
    assert w3.eth.block_number == head
    new_hashes = [w3.eth.get_block(number)["hash"] for number in range(head - 1, head + 1)]
    assert all(new != old for new, old in zip(new_hashes, old_hashes, strict=True))
    for tx_hash, block_number in old_blocks.items():
        receipt = w3.eth.get_transaction_receipt(tx_hash)
        assert receipt["status"] == 1
        assert receipt["blockNumber"] == block_number
    assert len(w3.eth.get_block(head - 1)["transactions"]) == 2


def test_reorg_over_earlier_reorg(w3: Web3) -> None:
    raws = [send_signed(w3, 4), send_signed(w3, 5), send_signed(w3, 6)]
    head = w3.eth.block_number
    filler = dev_account(outages.REORG_FILLER_ACCOUNT).address

    reorg(w3, 1)
    # The first reorg's filler transfer sits in the last block, inside the second reorg's range.
    first, depth, mined_again = reorg(w3, 3)

    assert (first, depth, mined_again) == (head - 2, 3, 3)
    assert w3.eth.get_transaction_count(filler) == 2
    assert len(w3.eth.get_block(head - 2)["transactions"]) == 3
    for raw in raws:
        assert w3.eth.get_transaction_receipt(keccak(raw))["status"] == 1


def test_reorg_rejected_three_times_raises(w3: Web3) -> None:
    raw = send_signed(w3, 4)

    class Rejecting(NodeProvider):
        def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
            if method == "anvil_reorg":
                return {"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "nonce too low"}}  # type: ignore[typeddict-item]
            return super().make_request(method, params)

    rejecting = Web3(Rejecting(w3.provider.node))  # type: ignore[attr-defined]

    with pytest.raises(OutageError, match="anvil_reorg of depth 1 failed 3 times"):
        reorg(rejecting, 1)

    assert w3.eth.get_transaction_receipt(keccak(raw))["status"] == 1


class FailingProvider(BaseProvider):
    """Fails the first `failures` requests with `code`, then returns block number 7."""

    def __init__(self, failures: int, code: int) -> None:
        super().__init__()
        self.failures = failures
        self.code = code
        self.requests = 0

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        self.requests += 1
        if self.requests <= self.failures:
            return {"jsonrpc": "2.0", "id": 1, "error": {"code": self.code, "message": "injected fault"}}  # type: ignore[typeddict-item]
        return {"jsonrpc": "2.0", "id": 1, "result": "0x7"}


@pytest.fixture
def no_retry_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outages.time, "sleep", lambda seconds: None)


def test_retry_middleware_retries_internal_error(no_retry_delay: None) -> None:
    provider = FailingProvider(failures=3, code=-32603)
    w3 = Web3(provider)
    w3.middleware_onion.add(RetryInternalErrors, name="retry_internal_errors")

    assert w3.eth.block_number == 7
    assert provider.requests == 4


def test_retry_middleware_passes_other_errors(no_retry_delay: None) -> None:
    provider = FailingProvider(failures=1, code=-32000)
    w3 = Web3(provider)
    w3.middleware_onion.add(RetryInternalErrors, name="retry_internal_errors")

    with pytest.raises(Web3RPCError, match="injected fault"):
        w3.eth.block_number

    assert provider.requests == 1


class DroppingProvider(BaseProvider):
    """Drops the connection of the first `drops` requests, as a server closing a kept-alive connection does."""

    def __init__(self, drops: int) -> None:
        super().__init__()
        self.drops = drops
        self.requests = 0

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        self.requests += 1
        if self.requests <= self.drops:
            raise requests.exceptions.ConnectionError("Connection reset by peer")
        return {"jsonrpc": "2.0", "id": 1, "result": {"none": 3, "delay": 0, "fail": 1, "duplicate": 0}}


def test_node_control_resends_after_dropped_connection() -> None:
    provider = DroppingProvider(drops=1)

    counts = outages.node_control(Web3(provider), "wagerlab_setFaults", [{}])

    assert counts["fail"] == 1
    assert provider.requests == 2


def test_node_control_dropped_every_time_raises() -> None:
    provider = DroppingProvider(drops=outages.CONTROL_ATTEMPTS)

    with pytest.raises(OutageError, match="wagerlab_setFaults failed 3 times"):
        outages.node_control(Web3(provider), "wagerlab_setFaults", [{}])

    assert provider.requests == outages.CONTROL_ATTEMPTS


def test_db_lock_holds_writers_until_released(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    create_tables(engine)
    event = ChainEvent(chain_id=1, tx_hash="0x" + "11" * 32, log_index=0, block_number=1, block_hash="0x" + "22" * 32, event="Deposited", monitor="deposits", args={})
    lock_taken = threading.Event()

    def write_during_lock() -> None:
        lock_taken.wait()
        with write_session(engine) as session:
            session.add(event)

    writer = threading.Thread(target=write_during_lock)
    writer.start()
    sleep = outages.time.sleep

    def start_writer_then_sleep(seconds: float) -> None:
        lock_taken.set()
        sleep(seconds)

    monkeypatch.setattr(outages.time, "sleep", start_writer_then_sleep)
    result = outages.db_lock(engine, 1)
    writer.join(timeout=30)

    assert "contained 0 applied logs when it was taken and 0 when it was released" in result.detail
    assert "1 more were applied within 1 s of the release" in result.detail
    assert result.exercised
    assert result.evidence == {"applied_at_release": 0, "applied_after_release": 1}
    assert not writer.is_alive()
    assert outages.applied_event_count(engine) == 1


def test_db_lock_without_writers_not_exercised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    create_tables(engine)
    monkeypatch.setattr(outages, "RELEASE_WATCH_SECONDS", 0.1)

    result = outages.db_lock(engine, 0)

    assert not result.exercised
    assert result.evidence == {"applied_at_release": 0, "applied_after_release": 0}
    assert "0 more were applied" in result.detail
