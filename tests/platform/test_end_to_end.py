"""A bet from registration to claim through the api and chainapi over HTTP, on the real node."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from api_fixtures import ADMIN_TOKEN, FAST_PASSWORDS, Chain, ServerThread, chain, db, make_config, sign_call  # noqa: F401
from sqlalchemy.engine import Engine

from wagerlab.chain.accounts import dev_account, dev_roles
from wagerlab.chain.contracts import contract, transact
from wagerlab.odds import ONE_TOKEN, payout
from wagerlab.platform.app import build_api_app, build_chainapi_app
from wagerlab.platform.config import PlatformConfig

BETTOR = dev_account(8)
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
MARKET_ID = 500


@pytest.fixture(scope="module")
def platform(chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, PlatformConfig]]:  # noqa: F811
    """chainapi and the api, each served by uvicorn on a free port, sharing one SQLite file."""
    db_url = f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'platform.db'}"
    chainapi_thread = ServerThread(build_chainapi_app(make_config(db_url, chain.deployment, rpc_url=chain.url)), "chainapi")
    chainapi_port = int(chainapi_thread.start().rsplit(":", 1)[1])
    config = make_config(db_url, chain.deployment, rpc_url=chain.url, chainapi_port=chainapi_port)
    api_app = build_api_app(config)
    api_app.state.api.passwords = FAST_PASSWORDS
    api_thread = ServerThread(api_app, "api")
    api_url = api_thread.start()
    yield api_url, config
    api_thread.stop()
    chainapi_thread.stop()


@pytest.fixture(scope="module")
def api(platform: tuple[str, PlatformConfig]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform[0], timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def bettor_token(api: httpx.Client, chain: Chain) -> str:  # noqa: F811
    """Register the bettor and put 100 tokens into its book balance from its own wallet."""
    assert api.post("/api/register", json={"username": "alice", "password": "correct horse", "address": BETTOR.address}).status_code == 201
    token = api.post("/api/login", json={"username": "alice", "password": "correct horse"}).json()["token"]
    wager = contract(chain.w3, "WagerToken", chain.deployment.token)
    book = contract(chain.w3, "Sportsbook", chain.deployment.sportsbook)
    for call in (
        wager.functions.faucet(100 * ONE_TOKEN),
        wager.functions.approve(chain.deployment.sportsbook, 100 * ONE_TOKEN),
        book.functions.deposit(100 * ONE_TOKEN),
    ):
        assert transact(chain.w3, BETTOR, call, gas=300_000)["status"] == 1
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_tx(api: httpx.Client, token: str, tx_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        tx = api.get(f"/api/transactions/{tx_id}", headers=bearer(token)).json()
        if tx["status"] != "pending":
            return tx
        assert time.monotonic() < deadline, f"tx {tx_id} still pending"
        time.sleep(0.05)


def create_market(api: httpx.Client, chain: Chain, market_id: int, closes_in: int = 3600) -> httpx.Response:  # noqa: F811
    closes_at = chain.w3.eth.get_block("latest")["timestamp"] + closes_in
    body = {
        "market_id": market_id,
        "name": f"bout {market_id}",
        "outcomes": ["red", "blue"],
        "closes_at": closes_at,
        "liability_cap": 10_000 * ONE_TOKEN,
        "odds": [2_000_000, 1_900_000],
    }
    return api.post("/api/admin/markets", json=body, headers=ADMIN)


def test_bet_settle_claim(api: httpx.Client, chain: Chain, bettor_token: str) -> None:  # noqa: F811
    book = contract(chain.w3, "Sportsbook", chain.deployment.sportsbook)
    created = create_market(api, chain, MARKET_ID)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "open"
    assert book.functions.getMarket(MARKET_ID).call()[0] == 1

    # Quote and bet.
    issued = api.post("/api/quotes", json={"market_id": MARKET_ID, "outcome": 0, "stake": 10 * ONE_TOKEN}, headers=bearer(bettor_token)).json()
    quote = issued["quote"]
    quote_tuple = (quote["bettor"], quote["market_id"], quote["outcome"], quote["odds"], quote["max_stake"], quote["expiry"], quote["nonce"])
    data = book.encode_abi("placeBet", [quote_tuple, quote["max_stake"], bytes.fromhex(issued["signature"][2:])])
    raw = sign_call(chain.w3, BETTOR, chain.deployment.sportsbook, data)
    bet_id = book.functions.nextBetId().call()

    placed = api.post("/api/bets", json={"raw_transaction": raw}, headers=bearer(bettor_token))
    assert placed.status_code == 202, placed.text
    tx = wait_tx(api, bettor_token, placed.json()["tx_id"])
    assert tx["status"] == "mined", tx
    assert book.functions.getBet(bet_id).call()[:4] == [BETTOR.address, MARKET_ID, 0, 10 * ONE_TOKEN]
    again = api.post("/api/bets", json={"raw_transaction": raw}, headers=bearer(bettor_token))
    assert again.json()["tx_id"] == placed.json()["tx_id"]

    # Close, settle through two oracle reporters, claim.
    closed = api.post(f"/api/admin/markets/{MARKET_ID}/close", headers=ADMIN)
    assert closed.status_code == 200, closed.text
    late = api.post("/api/quotes", json={"market_id": MARKET_ID, "outcome": 0, "stake": 1}, headers=bearer(bettor_token))
    assert late.status_code == 409
    oracle = contract(chain.w3, "ResultOracle", chain.deployment.oracle)
    for reporter in dev_roles().reporters[:2]:
        assert transact(chain.w3, reporter, oracle.functions.submitResult(MARKET_ID, 0), gas=500_000)["status"] == 1
    balance_before = book.functions.balanceOf(BETTOR.address).call()

    claim_raw = sign_call(chain.w3, BETTOR, chain.deployment.sportsbook, book.encode_abi("claim", [bet_id]))
    claimed = api.post("/api/claims", json={"raw_transaction": claim_raw}, headers=bearer(bettor_token))
    assert wait_tx(api, bettor_token, claimed.json()["tx_id"])["status"] == "mined"
    assert book.functions.balanceOf(BETTOR.address).call() == balance_before + payout(10 * ONE_TOKEN, 2_000_000)

    # A second claim is mined and reverts; chainapi stores the decoded error.
    second_raw = sign_call(chain.w3, BETTOR, chain.deployment.sportsbook, book.encode_abi("claim", [bet_id]))
    second = api.post("/api/claims", json={"raw_transaction": second_raw}, headers=bearer(bettor_token))
    reverted = wait_tx(api, bettor_token, second.json()["tx_id"])
    assert reverted["status"] == "reverted"
    assert reverted["error"] == f"SportsbookAlreadyClaimed(betId={bet_id})"


def test_create_market_revert_removes_rows(api: httpx.Client, chain: Chain, bettor_token: str) -> None:  # noqa: F811
    response = create_market(api, chain, 501, closes_in=-10)

    assert response.status_code == 409
    assert response.json()["error"] == "transaction_reverted"
    assert "SportsbookInvalidClosingTime" in response.json()["detail"]
    markets = api.get("/api/markets", headers=bearer(bettor_token)).json()
    assert 501 not in [market["market_id"] for market in markets]
    assert create_market(api, chain, 501).status_code == 201


def test_create_market_duplicate(api: httpx.Client, chain: Chain) -> None:  # noqa: F811
    assert create_market(api, chain, 502).status_code == 201

    response = create_market(api, chain, 502)

    assert response.status_code == 409
    assert response.json()["field"] == "market_id"


def test_pause_and_unpause(api: httpx.Client, chain: Chain) -> None:  # noqa: F811
    book = contract(chain.w3, "Sportsbook", chain.deployment.sportsbook)

    paused = api.post("/api/admin/pause", headers=ADMIN)
    twice = api.post("/api/admin/pause", headers=ADMIN)
    assert book.functions.paused().call() is True
    unpaused = api.post("/api/admin/unpause", headers=ADMIN)

    assert paused.status_code == 200
    assert paused.json()["paused"] is True
    assert twice.status_code == 409
    assert "SportsbookEnforcedPause()" in twice.json()["detail"]
    assert unpaused.status_code == 200
    assert book.functions.paused().call() is False


def test_close_unknown_market(api: httpx.Client) -> None:
    response = api.post("/api/admin/markets/424242/close", headers=ADMIN)

    assert response.status_code == 404


def test_quote_expiry_follows_chain_time(api: httpx.Client, chain: Chain, bettor_token: str) -> None:  # noqa: F811
    chain.w3.provider.make_request("evm_increaseTime", [1_000])  # type: ignore[arg-type]
    chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    assert create_market(api, chain, 503).status_code == 201
    chain_now = chain.w3.eth.get_block("latest")["timestamp"]
    assert chain_now > time.time() + 900

    issued = api.post("/api/quotes", json={"market_id": 503, "outcome": 1, "stake": ONE_TOKEN}, headers=bearer(bettor_token)).json()

    assert chain_now + 120 <= issued["quote"]["expiry"] <= chain_now + 130
