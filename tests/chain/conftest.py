"""Fixtures for the chain node's tests: a node served by uvicorn on a free loopback port,
real web3 clients, and the Probe test contract (tests/chain/data/Probe.sol)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from chain_helpers import RunningNode, start_node
from web3 import HTTPProvider, Web3
from web3.contract import Contract

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def running() -> Iterator[RunningNode]:
    running_node, thread = start_node()
    yield running_node
    thread.stop()


@pytest.fixture(scope="module")
def w3(running: RunningNode) -> Web3:
    web3 = Web3(HTTPProvider(running.http_url))
    web3.eth.default_account = web3.eth.accounts[0]
    return web3


@pytest.fixture(scope="session")
def probe_artifact() -> dict[str, Any]:
    return json.loads((DATA / "Probe.json").read_text())


@pytest.fixture(scope="module")
def probe(w3: Web3, probe_artifact: dict[str, Any]) -> Contract:
    factory = w3.eth.contract(abi=probe_artifact["abi"], bytecode=probe_artifact["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor().transact())
    assert receipt.status == 1
    return w3.eth.contract(address=receipt.contractAddress, abi=probe_artifact["abi"])
