"""Use a node the run did not start (`wagerlab run --rpc URL`), such as anvil or Hardhat.

The platform signs with its own dev keys (`wagerlab.chain.accounts`), not with the
external node's accounts, so the same roles and bettor addresses work on every node.
Those keys are unfunded on anvil and Hardhat, so `fund_dev_accounts` tops up dev
accounts 1..7 with `anvil_setBalance`, or `hardhat_setBalance` where only that exists.
A node with neither method (geth, a testnet) needs them funded beforehand.
"""

from __future__ import annotations

import logging
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from web3 import Web3
from web3.exceptions import Web3RPCError

from wagerlab.chain.accounts import dev_account

logger = logging.getLogger(__name__)

FUNDED_DEV_ACCOUNTS: Final = range(1, 8)
DEV_ACCOUNT_BALANCE: Final = 10_000 * 10**18
BALANCE_METHODS: Final = ("anvil_setBalance", "hardhat_setBalance")


class ExternalNodeError(Exception):
    """The external node cannot be reached or its dev accounts cannot be funded."""


def websocket_url(http_url: str) -> str:
    """Return the WebSocket URL on the same host and port, as anvil, Hardhat and our node serve."""
    parts = urlsplit(http_url)
    if parts.scheme not in ("http", "https"):
        raise ExternalNodeError(
            f"expected an http:// or https:// node URL, got {http_url!r}: pass the node's HTTP URL, "
            "for example http://127.0.0.1:8545"
        )
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, ""))


def fund_dev_accounts(w3: Web3, balance: int = DEV_ACCOUNT_BALANCE) -> list[str]:
    """Set the balance of every dev account 1..7 below `balance` to `balance`; return those set."""
    url = node_url(w3)
    try:
        chain_id = w3.eth.chain_id
    except Exception as err:
        raise ExternalNodeError(
            f"cannot reach the node at {url}: eth_chainId failed with {err!r}. Start the node first "
            "(for example `wagerlab chain --port 8545` or anvil) or correct the --rpc URL"
        ) from err
    logger.info("using the external node %s, chain id %d", url, chain_id)

    funded = []
    for index in FUNDED_DEV_ACCOUNTS:
        address = dev_account(index).address
        if w3.eth.get_balance(address) >= balance:
            continue
        _set_balance(w3, address, balance)
        funded.append(address)
    logger.info("funded %d dev accounts with %d wei each", len(funded), balance)
    return funded


def node_url(w3: Web3) -> str:
    """Return the URL `w3` sends requests to, for messages."""
    return str(getattr(w3.provider, "endpoint_uri", None) or w3.provider)


def _set_balance(w3: Web3, address: str, balance: int) -> None:
    errors = []
    for method in BALANCE_METHODS:
        try:
            w3.manager.request_blocking(method, [address, hex(balance)])  # type: ignore[arg-type]
        except Web3RPCError as err:
            errors.append(f"{method}: {err}")
            continue
        if w3.eth.get_balance(address) >= balance:
            return
        errors.append(f"{method}: the balance did not change")
    raise ExternalNodeError(
        f"cannot fund dev account {address} on the node at {node_url(w3)}, which is not a development "
        f"node with anvil_setBalance or hardhat_setBalance ({'; '.join(errors)}). Use anvil, Hardhat "
        f"or `wagerlab chain`, or send it at least {balance} wei yourself"
    )
