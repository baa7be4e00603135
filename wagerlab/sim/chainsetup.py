"""The chain node of a run or of `wagerlab up`, started as a process of the stack or external,
and the platform config that points the services at it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import requests
from web3 import HTTPProvider, Web3

from wagerlab.chain.accounts import dev_key
from wagerlab.chain.external import ExternalNodeError, fund_dev_accounts, websocket_url
from wagerlab.platform.config import Deployment, PlatformConfig
from wagerlab.sim.stack import Stack, free_port

RPC_TIMEOUT_SECONDS = 60
PROBE_TIMEOUT_SECONDS = 5
"""How long the first request to an external node may take, so that one that never responds fails fast."""


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
        probe_node(http_url)
        fund_dev_accounts(w3)
    return ChainEndpoint(w3, http_url, ws_url)


def probe_node(url: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> None:
    """Raise ExternalNodeError when the node at `url` does not respond to eth_chainId within `timeout` seconds.

    Other failures, such as a refused connection, are left to `fund_dev_accounts`, which names them.
    """
    # Without retries: web3 would otherwise try a timed-out request again, five times over.
    probe = Web3(HTTPProvider(url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None))
    try:
        probe.eth.chain_id
    except requests.Timeout as err:
        raise ExternalNodeError(
            f"the node at {url} accepted the connection but did not respond to eth_chainId within {timeout:g} s; "
            "check that a JSON-RPC node listens there and is not stuck, or correct the --rpc URL"
        ) from err
    except Exception:
        # fund_dev_accounts sends eth_chainId again and reports this failure with its cause.
        return


def platform_config(chain: ChainEndpoint, deployment: Deployment, *, db_url: str, redis_url: str | None, **settings: Any) -> PlatformConfig:
    """Build the config of a platform deployed on `chain`.

    Dev keys 1, 2 and 3 sign as operator, odds signer and guardian. The admin token is new,
    and the api, chainapi, monitors and stream each get a free port. `settings` sets other
    `PlatformConfig` fields, such as `gateway_port` or `cache_strategy`.
    """
    return PlatformConfig(
        rpc_url=chain.http_url,
        ws_url=chain.ws_url,
        db_url=db_url,
        redis_url=redis_url,
        deployment=deployment,
        operator_key=dev_key(1),
        odds_signer_key=dev_key(2),
        guardian_key=dev_key(3),
        admin_token=secrets.token_urlsafe(32),
        api_port=free_port(),
        chainapi_port=free_port(),
        monitors_port=free_port(),
        stream_port=free_port(),
        **settings,
    )
