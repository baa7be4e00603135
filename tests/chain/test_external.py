"""Preparing an external node for a run: the WebSocket URL and funding the dev accounts."""

from __future__ import annotations

import pytest
from chain_helpers import RunningNode
from web3 import HTTPProvider, Web3

from wagerlab.chain.accounts import dev_account
from wagerlab.chain.external import ExternalNodeError, fund_dev_accounts, websocket_url


@pytest.mark.parametrize(
    ("http_url", "ws_url"),
    [
        ("http://127.0.0.1:8545", "ws://127.0.0.1:8545"),
        ("https://node.test/rpc?key=1", "wss://node.test/rpc?key=1"),
    ],
)
def test_websocket_url(http_url: str, ws_url: str) -> None:
    assert websocket_url(http_url) == ws_url


def test_websocket_url_rejects_other_schemes() -> None:
    with pytest.raises(ExternalNodeError, match="expected an http"):
        websocket_url("ws://127.0.0.1:8545")


def test_fund_dev_accounts(w3: Web3) -> None:
    balance = 10**30

    funded = fund_dev_accounts(w3, balance)

    addresses = [dev_account(i).address for i in range(1, 8)]
    assert funded == addresses
    assert [w3.eth.get_balance(address) for address in addresses] == [balance] * 7
    assert fund_dev_accounts(w3, balance) == []


def test_fund_dev_accounts_without_balance_methods(running: RunningNode) -> None:
    w3 = Web3(HTTPProvider(running.http_url))
    running.node._methods.pop("anvil_setBalance")
    running.node._methods.pop("hardhat_setBalance")

    with pytest.raises(ExternalNodeError, match="cannot fund dev account .*send it at least"):
        fund_dev_accounts(w3, 10**40)


def test_fund_dev_accounts_unreachable() -> None:
    w3 = Web3(HTTPProvider("http://127.0.0.1:9", request_kwargs={"timeout": 2}))

    with pytest.raises(ExternalNodeError, match="cannot reach the node"):
        fund_dev_accounts(w3)
