"""chainapi against a real chain node: operator transactions, relays, reverts and idempotency."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from api_fixtures import Chain, chain, chainapi_server, db, sign_call  # noqa: F401
from sqlalchemy.engine import Engine
from sqlmodel import select

from wagerlab.chain.accounts import dev_account, dev_roles
from wagerlab.chain.contracts import contract, transact
from wagerlab.platform.db import ChainTransaction, read_session

FINAL = {"mined", "reverted", "rejected"}


def wait_final(base_url: str, tx_id: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        tx = httpx.get(f"{base_url}/transactions/{tx_id}").json()
        if tx["status"] in FINAL:
            return tx
        assert time.monotonic() < deadline, f"tx {tx_id} still {tx['status']} after {timeout} s"
        time.sleep(0.05)


def operator(base_url: str, function: str, args: list[Any], key: str) -> httpx.Response:
    body = {"kind": "operator", "function": function, "args": args, "idempotency_key": key}
    return httpx.post(f"{base_url}/transactions", json=body, timeout=30)


def relay(base_url: str, raw: str, key: str) -> httpx.Response:
    body = {"kind": "relay", "raw_transaction": raw, "idempotency_key": key}
    return httpx.post(f"{base_url}/transactions", json=body, timeout=30)


def closes_at(chain: Chain) -> int:
    return chain.w3.eth.get_block("latest")["timestamp"] + 3600


def rows(engine: Engine) -> list[ChainTransaction]:
    with read_session(engine) as session:
        return list(session.exec(select(ChainTransaction)))


def test_operator_create_market_mined(chain: Chain, chainapi_server: tuple[str, Any]) -> None:  # noqa: F811
    base_url, _ = chainapi_server

    response = operator(base_url, "createMarket", [101, 2, closes_at(chain), 10**9], "create-101")

    assert response.status_code == 202
    tx = wait_final(base_url, response.json()["tx_id"])
    assert tx["status"] == "mined"
    assert tx["block_number"] > 0
    assert tx["error"] is None
    book = contract(chain.w3, "Sportsbook", chain.deployment.sportsbook)
    assert book.functions.getMarket(101).call()[0] == 1


def test_operator_revert_decoded(chain: Chain, chainapi_server: tuple[str, Any]) -> None:  # noqa: F811
    base_url, _ = chainapi_server

    response = operator(base_url, "closeMarket", [999_999], "close-missing")

    tx = wait_final(base_url, response.json()["tx_id"])
    assert tx["status"] == "reverted"
    assert tx["error"] == "SportsbookMarketNotFound(marketId=999999)"


def test_guardian_pause_unpause(chain: Chain, chainapi_server: tuple[str, Any]) -> None:  # noqa: F811
    base_url, _ = chainapi_server
    book = contract(chain.w3, "Sportsbook", chain.deployment.sportsbook)

    paused = wait_final(base_url, operator(base_url, "pause", [], "pause-1").json()["tx_id"])
    assert paused["status"] == "mined"
    assert book.functions.paused().call() is True
    again = wait_final(base_url, operator(base_url, "pause", [], "pause-2").json()["tx_id"])
    unpaused = wait_final(base_url, operator(base_url, "unpause", [], "unpause-1").json()["tx_id"])

    assert again["status"] == "reverted"
    assert again["error"] == "SportsbookEnforcedPause()"
    assert unpaused["status"] == "mined"
    assert book.functions.paused().call() is False


def test_operator_concurrent_nonces(chain: Chain, chainapi_server: tuple[str, Any], db: tuple[str, Engine]) -> None:  # noqa: F811
    base_url, _ = chainapi_server
    close = closes_at(chain)

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(lambda i: operator(base_url, "createMarket", [200 + i, 3, close, 10**9], f"c{i}"), range(6)))

    txs = [wait_final(base_url, response.json()["tx_id"]) for response in responses]
    assert [tx["status"] for tx in txs] == ["mined"] * 6
    nonces = sorted(row.nonce for row in rows(db[1]))  # type: ignore[type-var]
    assert nonces == list(range(nonces[0], nonces[0] + 6))


def test_operator_nonce_resync(chain: Chain, chainapi_server: tuple[str, Any]) -> None:  # noqa: F811
    base_url, _ = chainapi_server
    first = wait_final(base_url, operator(base_url, "createMarket", [301, 2, closes_at(chain), 1], "r1").json()["tx_id"])
    # The operator sends one transaction behind chainapi's back, so chainapi's nonce is stale.
    book = contract(chain.w3, "Sportsbook", chain.deployment.sportsbook)
    transact(chain.w3, dev_roles().operator, book.functions.createMarket(302, 2, closes_at(chain), 1), gas=500_000)

    second = wait_final(base_url, operator(base_url, "createMarket", [303, 2, closes_at(chain), 1], "r2").json()["tx_id"])

    assert first["status"] == "mined"
    assert second["status"] == "mined"
    assert book.functions.getMarket(303).call()[0] == 1


def test_relay_idempotent(chain: Chain, chainapi_server: tuple[str, Any], db: tuple[str, Engine]) -> None:  # noqa: F811
    base_url, _ = chainapi_server
    bettor = dev_account(8)
    token = contract(chain.w3, "WagerToken", chain.deployment.token)
    raw = sign_call(chain.w3, bettor, chain.deployment.token, token.encode_abi("faucet", [1_000_000]))
    before = token.functions.balanceOf(bettor.address).call()

    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(lambda _: relay(base_url, raw, "same-key"), range(4)))
    repeat = relay(base_url, raw, "same-key")

    tx_ids = {response.json()["tx_id"] for response in [*responses, repeat]}
    assert len(tx_ids) == 1
    assert all(response.status_code == 202 for response in responses)
    tx = wait_final(base_url, tx_ids.pop())
    assert tx["status"] == "mined"
    stored = rows(db[1])
    assert len(stored) == 1
    assert stored[0].attempts == 1
    assert stored[0].function == "unknown"
    assert token.functions.balanceOf(bettor.address).call() == before + 1_000_000


def test_relay_nonce_reuse_rejected(chain: Chain, chainapi_server: tuple[str, Any]) -> None:  # noqa: F811
    base_url, _ = chainapi_server
    bettor = dev_account(9)
    token = contract(chain.w3, "WagerToken", chain.deployment.token)
    nonce = chain.w3.eth.get_transaction_count(bettor.address)
    first = sign_call(chain.w3, bettor, chain.deployment.token, token.encode_abi("faucet", [1]), nonce=nonce)
    second = sign_call(chain.w3, bettor, chain.deployment.token, token.encode_abi("faucet", [2]), nonce=nonce)

    mined = wait_final(base_url, relay(base_url, first, "first").json()["tx_id"])
    response = relay(base_url, second, "second")

    assert mined["status"] == "mined"
    assert response.json()["status"] == "rejected"
    assert "nonce" in response.json()["error"].lower()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "transfer", "idempotency_key": "k"}, "kind"),
        ({"kind": "relay"}, "idempotency_key"),
        ({"kind": "relay", "idempotency_key": "k", "raw_transaction": "0x12zz"}, "raw_transaction"),
        ({"kind": "relay", "idempotency_key": "k", "raw_transaction": "0x" + "ab" * 40}, "raw_transaction"),
        ({"kind": "operator", "idempotency_key": "k", "function": "withdraw", "args": [1]}, "function"),
        ({"kind": "operator", "idempotency_key": "k", "function": "createMarket", "args": [1, 2]}, "args"),
        ({"kind": "operator", "idempotency_key": "k", "function": "createMarket", "args": [1, 300, 5, 1]}, "args"),
        ({"kind": "operator", "idempotency_key": "k", "function": "pause", "args": "none"}, "args"),
    ],
)
def test_post_transaction_rejects_bad_body(chainapi_server: tuple[str, Any], body: dict[str, Any], field: str) -> None:  # noqa: F811
    base_url, _ = chainapi_server

    response = httpx.post(f"{base_url}/transactions", json=body)

    assert response.status_code == 422
    assert response.json()["field"] == field


def test_relay_wrong_chain_rejected(chain: Chain, chainapi_server: tuple[str, Any]) -> None:  # noqa: F811
    base_url, _ = chainapi_server
    bettor = dev_account(8)
    tx = {"to": chain.deployment.token, "data": "0x", "value": 0, "gas": 50_000, "gasPrice": 10**9, "nonce": 0, "chainId": 1}
    raw = "0x" + bytes(bettor.sign_transaction(tx).raw_transaction).hex()

    response = relay(base_url, raw, "wrong-chain")

    assert response.status_code == 422
    assert "chain id 1" in response.json()["detail"]


def test_get_unknown_transaction(chainapi_server: tuple[str, Any]) -> None:  # noqa: F811
    base_url, _ = chainapi_server

    response = httpx.get(f"{base_url}/transactions/no-such-id")

    assert response.status_code == 404


def test_node_unreachable_keeps_relay_pending(db: tuple[str, Engine]) -> None:  # noqa: F811
    from api_fixtures import CHAIN_ID, make_config
    from starlette.testclient import TestClient

    from wagerlab.platform.app import build_chainapi_app

    url, engine = db
    app = build_chainapi_app(make_config(url, rpc_url="http://127.0.0.1:9"), engine=engine)
    tx = {"to": "0x" + "70" * 20, "data": "0x", "value": 0, "gas": 50_000, "gasPrice": 10**9, "nonce": 0, "chainId": CHAIN_ID}
    raw = "0x" + bytes(dev_account(8).sign_transaction(tx).raw_transaction).hex()

    with TestClient(app) as client:
        relayed = client.post("/transactions", json={"kind": "relay", "raw_transaction": raw, "idempotency_key": "k1"})
        paused = client.post("/transactions", json={"kind": "operator", "function": "pause", "args": [], "idempotency_key": "k2"})

    assert relayed.status_code == 202
    assert relayed.json()["status"] == "pending"
    assert "did not respond" in relayed.json()["error"]
    assert paused.json()["status"] == "rejected"
    assert paused.json()["error"].startswith("not sent")
    assert [row.attempts for row in rows(engine) if row.kind == "relay"] == [1]


def test_relay_internal_node_error_retried(chain: Chain, chainapi_server: tuple[str, Any]) -> None:  # noqa: F811
    base_url, _ = chainapi_server
    bettor = dev_account(7)
    token = contract(chain.w3, "WagerToken", chain.deployment.token)
    raw = sign_call(chain.w3, bettor, chain.deployment.token, token.encode_abi("faucet", [3]))

    chain.w3.provider.make_request("wagerlab_setFaults", [{"fail_share": 1}])  # type: ignore[arg-type]
    try:
        response = relay(base_url, raw, "internal-error")
    finally:
        chain.w3.provider.make_request("wagerlab_setFaults", [{}])  # type: ignore[arg-type]
    tx = wait_final(base_url, response.json()["tx_id"])

    assert response.json()["status"] == "pending"
    assert "failed eth_sendRawTransaction internally" in response.json()["error"]
    assert tx["status"] == "mined"
