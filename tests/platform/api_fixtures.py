"""Fixtures for the api and chainapi tests: configs, databases, servers on free ports, a chain."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from argon2 import PasswordHasher
from eth_utils import to_checksum_address
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.testclient import TestClient
from web3 import HTTPProvider, Web3

from wagerlab.chain.accounts import dev_key, dev_roles
from wagerlab.chain.deploy import deploy_platform
from wagerlab.chain.node import Node
from wagerlab.chain.server import build_app as build_node_app
from wagerlab.odds import ONE_TOKEN
from wagerlab.platform.auth import Passwords
from wagerlab.platform.config import Deployment, PlatformConfig
from wagerlab.platform.db import Market, MarketOdds, create_tables, make_engine, write_session
from wagerlab.testing.backends import new_database_url

ADMIN_TOKEN = "test-admin-token"
CHAIN_ID = 131277322940537
SPORTSBOOK = to_checksum_address("0x" + "5b" * 20)
FAST_PASSWORDS = Passwords(PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1))
"""Real argon2id with a small cost, so that tests register users quickly."""


def make_config(db_url: str, deployment: Deployment | None = None, **overrides: Any) -> PlatformConfig:
    fields: dict[str, Any] = {
        "rpc_url": "http://127.0.0.1:9",
        "ws_url": "ws://127.0.0.1:9",
        "db_url": db_url,
        "deployment": deployment
        or Deployment(chain_id=CHAIN_ID, token="0x" + "70" * 20, sportsbook=SPORTSBOOK, oracle="0x" + "0c" * 20, start_block=1),
        "operator_key": dev_key(1),
        "odds_signer_key": dev_key(2),
        "guardian_key": dev_key(3),
        "admin_token": ADMIN_TOKEN,
        "chainapi_port": 9,
    }
    fields.update(overrides)
    return PlatformConfig(**fields)


@pytest.fixture
def db(tmp_path: Path) -> tuple[str, Engine]:
    url = new_database_url(tmp_path)
    engine = make_engine(url)
    create_tables(engine)
    return url, engine


def add_market(engine: Engine, market_id: int, odds: list[int], *, closes_at: int | None = None, status: str = "open") -> None:
    """Insert a market and its odds straight into the database, as if created earlier."""
    with write_session(engine) as session:
        outcomes = [f"outcome {index}" for index in range(len(odds))]
        market = Market(
            market_id=market_id,
            name=f"market {market_id}",
            outcomes=outcomes,
            status=status,  # type: ignore[arg-type]
            closes_at=closes_at or int(time.time()) + 3600,
            liability_cap=1_000 * ONE_TOKEN,
        )
        session.add(market)
        session.flush()
        session.add(MarketOdds(market_id=market_id, odds=odds))


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register_and_login(client: TestClient, username: str, address: str, password: str = "correct horse") -> str:
    response = client.post("/api/register", json={"username": username, "password": password, "address": address})
    assert response.status_code == 201, response.text
    response = client.post("/api/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["token"]


class ServerThread:
    """An ASGI app served by uvicorn on a free loopback port in a background thread."""

    def __init__(self, app: Starlette, name: str) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=name, daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"{self.thread.name} did not start within 10 s")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Chain:
    """A chain node on a free port with the platform's contracts deployed."""

    url: str
    w3: Web3
    deployment: Deployment
    node: Node


HOUSE_FUNDING = 1_000_000 * ONE_TOKEN


@pytest.fixture(scope="module")
def chain() -> Iterator[Chain]:
    node = Node()
    thread = ServerThread(build_node_app(node), "chain-node")
    url = thread.start()
    w3 = Web3(HTTPProvider(url))
    deployment = deploy_platform(w3, dev_roles(), house_funding=HOUSE_FUNDING)
    yield Chain(url=url, w3=w3, deployment=deployment, node=node)
    thread.stop()


def sign_call(w3: Web3, account: Any, to: str, data: bytes | str, *, nonce: int | None = None, gas: int = 400_000) -> str:
    """Sign a call from `account` with an explicit gas limit; return the raw transaction as hex."""
    tx = {
        "to": Web3.to_checksum_address(to),
        "data": data if isinstance(data, str) else "0x" + data.hex(),
        "value": 0,
        "gas": gas,
        "gasPrice": w3.eth.gas_price,
        "nonce": w3.eth.get_transaction_count(account.address, "pending") if nonce is None else nonce,
        "chainId": w3.eth.chain_id,
    }
    return "0x" + bytes(account.sign_transaction(tx).raw_transaction).hex()


@pytest.fixture
def chainapi_server(chain: Chain, db: tuple[str, Engine]) -> Iterator[tuple[str, Any]]:
    """chainapi on a free port, on the module's chain and this test's database."""
    from wagerlab.platform.app import build_chainapi_app

    url, engine = db
    config = make_config(url, chain.deployment, rpc_url=chain.url)
    app = build_chainapi_app(config, engine=engine)
    thread = ServerThread(app, "chainapi")
    base_url = thread.start()
    yield base_url, app
    thread.stop()
