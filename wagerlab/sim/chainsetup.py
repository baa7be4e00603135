"""The chain node of a run or of `wagerlab up`: started as a process of the stack, or external."""

from __future__ import annotations

from dataclasses import dataclass

from web3 import HTTPProvider, Web3

from wagerlab.chain.external import fund_dev_accounts, websocket_url
from wagerlab.sim.stack import Stack

RPC_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class ChainEndpoint:
    """The chain node a run or `wagerlab up` uses: a web3 client and the node's URLs."""

    w3: Web3
    http_url: str
    ws_url: str


def open_chain(stack: Stack, rpc_url: str | None) -> ChainEndpoint:
    """Start `wagerlab chain` as a process of `stack`, or prepare the external node at `rpc_url`.

    An external node (anvil, Hardhat, a `wagerlab chain` started separately) gets dev
    accounts 1..7 funded and serves WebSocket on the same host and port. It is no process
    of `stack`, so stopping the stack leaves it running. Raises ExternalNodeError when
    `rpc_url` is not an http(s) URL, the node does not respond, or it cannot fund the accounts.
    """
    if rpc_url is None:
        http_url, ws_url = stack.start_node()
    else:
        http_url, ws_url = rpc_url, websocket_url(rpc_url)
    w3 = Web3(HTTPProvider(http_url, request_kwargs={"timeout": RPC_TIMEOUT_SECONDS}))
    if rpc_url is not None:
        fund_dev_accounts(w3)
    return ChainEndpoint(w3, http_url, ws_url)
