"""Markets, odds through the cache, odds changes and quote validation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from api_fixtures import ADMIN_TOKEN, FAST_PASSWORDS, SPORTSBOOK, add_market, auth, db, make_config, register_and_login  # noqa: F401
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import to_checksum_address
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from wagerlab.platform.quotes import WallClock
from wagerlab.chain.accounts import dev_account
from wagerlab.chain.contracts import quote_typed_data
from wagerlab.platform.db import Quote, read_session

ALICE = "0x" + "a1" * 20
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def make_client(db: tuple[str, Engine], **overrides: Any) -> TestClient:
    from wagerlab.platform.app import build_api_app

    url, engine = db
    app = build_api_app(make_config(url, **overrides), engine=engine, clock=WallClock())
    app.state.api.passwords = FAST_PASSWORDS
    return TestClient(app)


@pytest.fixture
def client(db: tuple[str, Engine]) -> Iterator[TestClient]:  # noqa: F811
    add_market(db[1], 1, [1_800_000, 2_100_000])
    add_market(db[1], 2, [1_500_000, 3_000_000, 4_000_000], status="closed")
    add_market(db[1], 3, [1_900_000, 1_900_000], closes_at=int(time.time()) - 5)
    with make_client(db) as test_client:
        yield test_client


@pytest.fixture
def token(client: TestClient) -> str:
    return register_and_login(client, "alice", ALICE)


def stats(client: TestClient) -> dict[str, Any]:
    return client.get("/api/stats").json()


def test_list_markets(client: TestClient, token: str) -> None:
    markets = client.get("/api/markets", headers=auth(token)).json()

    assert [market["market_id"] for market in markets] == [1, 2, 3]
    assert markets[1]["status"] == "closed"
    assert markets[0]["outcomes"] == ["outcome 0", "outcome 1"]
    assert set(markets[0]) == {"market_id", "name", "outcomes", "status", "closes_at"}


def test_odds_cache_hit_after_miss(client: TestClient, token: str) -> None:
    first = client.get("/api/markets/1/odds", headers=auth(token)).json()
    second = client.get("/api/markets/1/odds", headers=auth(token)).json()

    assert first == second
    assert first["odds"] == [1_800_000, 2_100_000]
    assert first["version"] == 1
    counters = stats(client)
    assert (counters["hits"], counters["misses"], counters["db_reads"]) == (1, 1, 1)
    assert counters["requests"]["GET /api/markets/{market_id}/odds"] == 2


def test_odds_change_invalidates_cache(client: TestClient, token: str) -> None:
    client.get("/api/markets/1/odds", headers=auth(token))

    changed = client.put("/api/admin/markets/1/odds", json={"odds": [1_700_000, 2_300_000]}, headers=ADMIN)
    after = client.get("/api/markets/1/odds", headers=auth(token)).json()
    cached = client.get("/api/markets/1/odds", headers=auth(token)).json()

    assert changed.status_code == 200
    assert changed.json() == {"market_id": 1, "odds": [1_700_000, 2_300_000], "version": 2}
    assert after["odds"] == [1_700_000, 2_300_000]
    assert after["version"] == 2
    assert cached == after
    counters = stats(client)
    assert (counters["hits"], counters["misses"], counters["db_reads"]) == (1, 2, 2)


def test_odds_cache_expires(db: tuple[str, Engine]) -> None:  # noqa: F811
    add_market(db[1], 1, [1_800_000, 2_100_000])
    with make_client(db, odds_ttl_seconds=1) as client:
        token = register_and_login(client, "alice", ALICE)
        client.get("/api/markets/1/odds", headers=auth(token))
        client.get("/api/markets/1/odds", headers=auth(token))
        time.sleep(1.2)
        client.get("/api/markets/1/odds", headers=auth(token))
        counters = stats(client)

    assert (counters["hits"], counters["misses"], counters["db_reads"]) == (1, 2, 2)


@pytest.mark.parametrize("path", ["/api/markets/99/odds", "/api/markets/abc/odds", "/api/markets/-1/odds"])
def test_odds_unknown_market(client: TestClient, token: str, path: str) -> None:
    response = client.get(path, headers=auth(token))

    assert response.status_code in (404, 422)
    assert response.json()["field"] == "market_id"


@pytest.mark.parametrize(
    ("market_id", "body", "status", "field"),
    [
        (1, {"odds": [1_700_000]}, 422, "odds"),
        (1, {"odds": [1_700_000, 1_000_000]}, 422, "odds"),
        (1, {"odds": [1_700_000, "2.5"]}, 422, "odds"),
        (1, {}, 422, "odds"),
        (99, {"odds": [1_700_000, 2_000_000]}, 404, "market_id"),
        (2, {"odds": [1_700_000, 2_000_000, 3_000_000]}, 409, "market_id"),
    ],
)
def test_odds_change_rejects_bad_input(
    client: TestClient, market_id: int, body: dict[str, Any], status: int, field: str
) -> None:
    response = client.put(f"/api/admin/markets/{market_id}/odds", json=body, headers=ADMIN)

    assert response.status_code == status
    assert response.json()["field"] == field


def test_odds_change_needs_admin(client: TestClient, token: str) -> None:
    response = client.put("/api/admin/markets/1/odds", json={"odds": [1_700_000, 2_300_000]}, headers=auth(token))

    assert response.status_code == 401


def test_quote_signed_by_odds_signer(client: TestClient, token: str, db: tuple[str, Engine]) -> None:  # noqa: F811
    before = int(time.time())
    response = client.post("/api/quotes", json={"market_id": 1, "outcome": 1, "stake": 5_000_000}, headers=auth(token))

    assert response.status_code == 200
    payload = response.json()
    quote = payload["quote"]
    assert quote["bettor"] == to_checksum_address(ALICE)
    assert quote["odds"] == 2_100_000
    assert quote["max_stake"] == 5_000_000
    assert before + 120 <= quote["expiry"] <= int(time.time()) + 120
    assert 0 <= quote["nonce"] < 2**128
    assert payload["sportsbook"] == SPORTSBOOK
    typed = encode_typed_data(full_message=quote_typed_data(payload["chain_id"], SPORTSBOOK, quote))
    assert Account.recover_message(typed, signature=payload["signature"]) == dev_account(2).address
    with read_session(db[1]) as session:
        stored = session.get(Quote, str(quote["nonce"]))
        assert stored is not None
        assert stored.signature == payload["signature"]


def test_quote_uses_changed_odds(client: TestClient, token: str) -> None:
    client.post("/api/quotes", json={"market_id": 1, "outcome": 0, "stake": 1}, headers=auth(token))
    client.put("/api/admin/markets/1/odds", json={"odds": [1_650_000, 2_300_000]}, headers=ADMIN)

    quote = client.post("/api/quotes", json={"market_id": 1, "outcome": 0, "stake": 1}, headers=auth(token)).json()

    assert quote["quote"]["odds"] == 1_650_000


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"market_id": 99, "outcome": 0, "stake": 1}, 404, "market_id"),
        ({"market_id": 2, "outcome": 0, "stake": 1}, 409, "market_id"),
        ({"market_id": 3, "outcome": 0, "stake": 1}, 409, "market_id"),
        ({"market_id": 1, "outcome": 2, "stake": 1}, 422, "outcome"),
        ({"market_id": 1, "outcome": -1, "stake": 1}, 422, "outcome"),
        ({"market_id": 1, "outcome": 0, "stake": 0}, 422, "stake"),
        ({"market_id": 1, "outcome": 0, "stake": -5}, 422, "stake"),
        ({"market_id": 1, "outcome": 0, "stake": 2**63}, 422, "stake"),
        ({"market_id": 1, "outcome": 0, "stake": True}, 422, "stake"),
        ({"market_id": 1, "outcome": 0, "stake": 1.5}, 422, "stake"),
        ({"market_id": 1, "outcome": 0, "stake": "100"}, 422, "stake"),
        ({"market_id": "1", "outcome": 0, "stake": 1}, 422, "market_id"),
        ({"outcome": 0, "stake": 1}, 422, "market_id"),
    ],
)
def test_quote_rejects_bad_input(client: TestClient, token: str, body: dict[str, Any], status: int, field: str) -> None:
    response = client.post("/api/quotes", json=body, headers=auth(token))

    assert response.status_code == status
    assert response.json()["field"] == field


def test_quote_max_stake_accepted(client: TestClient, token: str) -> None:
    response = client.post("/api/quotes", json={"market_id": 1, "outcome": 0, "stake": 2**63 - 1}, headers=auth(token))

    assert response.status_code == 200
    assert response.json()["quote"]["max_stake"] == 2**63 - 1


def test_create_market_chainapi_down(client: TestClient, token: str) -> None:
    body = {
        "market_id": 7,
        "name": "bout 7",
        "outcomes": ["red", "blue"],
        "closes_at": int(time.time()) + 600,
        "liability_cap": 1_000_000,
        "odds": [2_000_000, 1_900_000],
    }

    response = client.post("/api/admin/markets", json=body, headers=ADMIN)

    assert response.status_code == 503
    assert "chainapi is unreachable" in response.json()["detail"]
    markets = client.get("/api/markets", headers=auth(token)).json()
    assert 7 not in [market["market_id"] for market in markets]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"outcomes": ["only one"]}, "outcomes"),
        ({"outcomes": ["a"] * 9}, "outcomes"),
        ({"outcomes": ["red", ""]}, "outcomes"),
        ({"odds": [2_000_000]}, "odds"),
        ({"odds": [2_000_000, 999_999]}, "odds"),
        ({"name": ""}, "name"),
        ({"liability_cap": -1}, "liability_cap"),
        ({"market_id": 2**63}, "market_id"),
        ({"closes_at": "tomorrow"}, "closes_at"),
    ],
)
def test_create_market_rejects_bad_input(client: TestClient, changes: dict[str, Any], field: str) -> None:
    body = {
        "market_id": 8,
        "name": "bout 8",
        "outcomes": ["red", "blue"],
        "closes_at": int(time.time()) + 600,
        "liability_cap": 1_000_000,
        "odds": [2_000_000, 1_900_000],
    } | changes

    response = client.post("/api/admin/markets", json=body, headers=ADMIN)

    assert response.status_code == 422
    assert response.json()["field"] == field


def test_create_market_existing_conflicts(client: TestClient) -> None:
    body = {"market_id": 1, "name": "again", "outcomes": ["a", "b"], "closes_at": int(time.time()) + 600, "liability_cap": 1, "odds": [2_000_000, 2_000_000]}

    response = client.post("/api/admin/markets", json=body, headers=ADMIN)

    assert response.status_code == 409
    assert response.json()["field"] == "market_id"
