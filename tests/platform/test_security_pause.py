"""A paused Sportsbook: the api quotes nothing and relays no bet until the guardian unpauses."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from api_fixtures import ADMIN_TOKEN, FAST_PASSWORDS, Chain, ServerThread, chain, make_config, sign_call  # noqa: F401

from wagerlab.chain.accounts import dev_account
from wagerlab.chain.contracts import contract, transact
from wagerlab.odds import ONE_TOKEN
from wagerlab.platform.api.pause import PAUSE_CACHE_SECONDS
from wagerlab.platform.app import build_api_app, build_chainapi_app

BETTOR = dev_account(9)
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
MARKET_ID = 700


@pytest.fixture(scope="module")
def api(chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:  # noqa: F811
    db_url = f"sqlite:///{tmp_path_factory.mktemp('pause') / 'platform.db'}"
    chainapi_thread = ServerThread(build_chainapi_app(make_config(db_url, chain.deployment, rpc_url=chain.url)), "chainapi")
    chainapi_port = int(chainapi_thread.start().rsplit(":", 1)[1])
    api_app = build_api_app(make_config(db_url, chain.deployment, rpc_url=chain.url, chainapi_port=chainapi_port))
    api_app.state.api.passwords = FAST_PASSWORDS
    api_thread = ServerThread(api_app, "api")
    with httpx.Client(base_url=api_thread.start(), timeout=60) as client:
        yield client
    api_thread.stop()
    chainapi_thread.stop()


def _token(api: httpx.Client, chain: Chain) -> dict[str, str]:  # noqa: F811
    api.post("/api/register", json={"username": "paula", "password": "correct horse", "address": BETTOR.address})
    token = api.post("/api/login", json={"username": "paula", "password": "correct horse"}).json()["token"]
    wager = contract(chain.w3, "WagerToken", chain.deployment.token)
    book = contract(chain.w3, "Sportsbook", chain.deployment.sportsbook)
    for call in (wager.functions.faucet(50 * ONE_TOKEN), wager.functions.approve(book.address, 50 * ONE_TOKEN), book.functions.deposit(50 * ONE_TOKEN)):
        assert transact(chain.w3, BETTOR, call, gas=300_000)["status"] == 1
    closes_at = chain.w3.eth.get_block("latest")["timestamp"] + 3600
    market = {"market_id": MARKET_ID, "name": "bout", "outcomes": ["red", "blue"], "closes_at": closes_at,
              "liability_cap": 1_000 * ONE_TOKEN, "odds": [2_000_000, 1_900_000]}
    assert api.post("/api/admin/markets", json=market, headers=ADMIN).status_code == 201
    return {"Authorization": f"Bearer {token}"}


def _signed_bet(api: httpx.Client, chain: Chain, auth: dict[str, str]) -> str:  # noqa: F811
    issued = api.post("/api/quotes", json={"market_id": MARKET_ID, "outcome": 0, "stake": ONE_TOKEN}, headers=auth).json()
    quote = issued["quote"]
    quote_tuple = (quote["bettor"], quote["market_id"], quote["outcome"], quote["odds"], quote["max_stake"], quote["expiry"], quote["nonce"])
    book = contract(chain.w3, "Sportsbook", chain.deployment.sportsbook)
    data = book.encode_abi("placeBet", [quote_tuple, quote["max_stake"], bytes.fromhex(issued["signature"][2:])])
    return sign_call(chain.w3, BETTOR, chain.deployment.sportsbook, data)


def test_paused_platform_rejects_quotes_and_bets(api: httpx.Client, chain: Chain) -> None:  # noqa: F811
    auth = _token(api, chain)
    raw = _signed_bet(api, chain, auth)

    assert api.post("/api/admin/pause", headers=ADMIN).status_code == 200
    time.sleep(PAUSE_CACHE_SECONDS + 0.1)
    quote = api.post("/api/quotes", json={"market_id": MARKET_ID, "outcome": 0, "stake": ONE_TOKEN}, headers=auth)
    bet = api.post("/api/bets", json={"raw_transaction": raw}, headers=auth)
    odds = api.get(f"/api/markets/{MARKET_ID}/odds", headers=auth)
    assert api.post("/api/admin/unpause", headers=ADMIN).status_code == 200
    time.sleep(PAUSE_CACHE_SECONDS + 0.1)
    after = api.post("/api/bets", json={"raw_transaction": raw}, headers=auth)

    assert quote.status_code == 409
    assert quote.json()["error"] == "platform_paused"
    assert bet.status_code == 409
    assert bet.json()["error"] == "platform_paused"
    assert odds.status_code == 200
    assert after.status_code == 202, after.text
