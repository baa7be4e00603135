"""Checks the api runs on signed placeBet and claim transactions before relaying them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from api_fixtures import CHAIN_ID, FAST_PASSWORDS, SPORTSBOOK, add_market, auth, db, make_config, register_and_login  # noqa: F401
from eth_account.signers.local import LocalAccount
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from wagerlab.platform.quotes import WallClock
from wagerlab.chain.accounts import dev_account
from wagerlab.platform.chainapi.rawtx import sportsbook_codec

ALICE = dev_account(8)
BOB = dev_account(9)
TOKEN_ADDRESS = "0x" + "70" * 20


def make_client(db: tuple[str, Engine]) -> TestClient:
    from wagerlab.platform.app import build_api_app

    url, engine = db
    app = build_api_app(make_config(url), engine=engine, clock=WallClock())
    app.state.api.passwords = FAST_PASSWORDS
    return TestClient(app)


@pytest.fixture
def client(db: tuple[str, Engine]) -> Iterator[TestClient]:  # noqa: F811
    add_market(db[1], 1, [1_800_000, 2_100_000])
    with make_client(db) as test_client:
        yield test_client


@pytest.fixture
def tokens(client: TestClient) -> dict[str, str]:
    return {"alice": register_and_login(client, "alice", ALICE.address), "bob": register_and_login(client, "bob", BOB.address)}


def sign(account: LocalAccount, data: bytes, *, to: str = SPORTSBOOK, chain_id: int = CHAIN_ID) -> str:
    tx = {"to": to, "data": "0x" + data.hex(), "value": 0, "gas": 400_000, "gasPrice": 10**9, "nonce": 0, "chainId": chain_id}
    return "0x" + bytes(account.sign_transaction(tx).raw_transaction).hex()


def place_bet_data(issued: dict[str, Any], *, stake: int | None = None, **changes: Any) -> bytes:
    """Encode placeBet for an issued quote, with optional tampered quote fields."""
    quote = issued["quote"] | changes
    quote_tuple = (
        quote["bettor"],
        quote["market_id"],
        quote["outcome"],
        quote["odds"],
        quote["max_stake"],
        quote["expiry"],
        quote["nonce"],
    )
    signature = bytes.fromhex(issued["signature"][2:])
    return sportsbook_codec().encode("placeBet", [quote_tuple, quote["max_stake"] if stake is None else stake, signature])


def get_quote(client: TestClient, token: str, stake: int = 10_000_000) -> dict[str, Any]:
    response = client.post("/api/quotes", json={"market_id": 1, "outcome": 0, "stake": stake}, headers=auth(token))
    assert response.status_code == 200, response.text
    return response.json()


def post_bet(client: TestClient, token: str, raw: str) -> Any:
    return client.post("/api/bets", json={"raw_transaction": raw}, headers=auth(token))


def test_valid_bet_reaches_chainapi(client: TestClient, tokens: dict[str, str]) -> None:
    issued = get_quote(client, tokens["alice"])

    response = post_bet(client, tokens["alice"], sign(ALICE, place_bet_data(issued)))

    # Every check passed; the config's chainapi port has no listener.
    assert response.status_code == 503
    assert "chainapi is unreachable" in response.json()["detail"]


def test_bet_smaller_stake_passes(client: TestClient, tokens: dict[str, str]) -> None:
    issued = get_quote(client, tokens["alice"])

    response = post_bet(client, tokens["alice"], sign(ALICE, place_bet_data(issued, stake=1)))

    assert response.status_code == 503


def test_bet_wrong_sender(client: TestClient, tokens: dict[str, str]) -> None:
    issued = get_quote(client, tokens["alice"])

    response = post_bet(client, tokens["alice"], sign(BOB, place_bet_data(issued)))

    assert response.status_code == 422
    assert response.json()["field"] == "raw_transaction.from"
    assert BOB.address in response.json()["detail"]


def test_bet_wrong_contract(client: TestClient, tokens: dict[str, str]) -> None:
    issued = get_quote(client, tokens["alice"])

    response = post_bet(client, tokens["alice"], sign(ALICE, place_bet_data(issued), to=TOKEN_ADDRESS))

    assert response.status_code == 422
    assert response.json()["field"] == "raw_transaction.to"


def test_bet_wrong_chain(client: TestClient, tokens: dict[str, str]) -> None:
    issued = get_quote(client, tokens["alice"])

    response = post_bet(client, tokens["alice"], sign(ALICE, place_bet_data(issued), chain_id=1))

    assert response.status_code == 422
    assert response.json()["field"] == "raw_transaction.chain_id"


@pytest.mark.parametrize(
    "data",
    [
        sportsbook_codec().encode("deposit", [1_000_000]),
        sportsbook_codec().encode("claim", [1]),
        bytes.fromhex("deadbeef") + b"\x00" * 32,
        b"",
    ],
)
def test_bet_wrong_function(client: TestClient, tokens: dict[str, str], data: bytes) -> None:
    response = post_bet(client, tokens["alice"], sign(ALICE, data))

    assert response.status_code == 422
    assert response.json()["field"] == "raw_transaction.function"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"odds": 9_000_000}, "quote.odds"),
        ({"outcome": 1}, "quote.outcome"),
        ({"market_id": 2}, "quote.market_id"),
        ({"max_stake": 10**12}, "quote.max_stake"),
        ({"expiry": 2**40}, "quote.expiry"),
        ({"bettor": BOB.address}, "quote.bettor"),
    ],
)
def test_bet_tampered_quote(client: TestClient, tokens: dict[str, str], changes: dict[str, Any], field: str) -> None:
    issued = get_quote(client, tokens["alice"])

    response = post_bet(client, tokens["alice"], sign(ALICE, place_bet_data(issued, **changes)))

    assert response.status_code == 422
    assert response.json()["field"] == field


def test_bet_stake_above_quote(client: TestClient, tokens: dict[str, str]) -> None:
    issued = get_quote(client, tokens["alice"])

    response = post_bet(client, tokens["alice"], sign(ALICE, place_bet_data(issued, stake=10_000_001)))

    assert response.status_code == 422
    assert response.json()["field"] == "stake"


def test_bet_tampered_signature(client: TestClient, tokens: dict[str, str]) -> None:
    issued = get_quote(client, tokens["alice"])
    other = get_quote(client, tokens["alice"])
    issued["signature"] = other["signature"]

    response = post_bet(client, tokens["alice"], sign(ALICE, place_bet_data(issued)))

    assert response.status_code == 422
    assert response.json()["field"] == "signature"


def test_bet_unknown_nonce(client: TestClient, tokens: dict[str, str]) -> None:
    issued = get_quote(client, tokens["alice"])

    response = post_bet(client, tokens["alice"], sign(ALICE, place_bet_data(issued, nonce=issued["quote"]["nonce"] + 1)))

    assert response.status_code == 422
    assert response.json()["field"] == "quote.nonce"


def test_bet_quote_of_other_user(client: TestClient, tokens: dict[str, str]) -> None:
    bobs = get_quote(client, tokens["bob"])

    # Alice signs Bob's quote, unchanged, and sends it with her token.
    response = post_bet(client, tokens["alice"], sign(ALICE, place_bet_data(bobs)))

    assert response.status_code == 422
    assert response.json()["field"] == "quote.nonce"


@pytest.mark.parametrize("raw", ["0x", "0xzz", "f86b", "0x" + "c0", "0x02" + "ff" * 10, 12])
def test_bet_undecodable_transaction(client: TestClient, tokens: dict[str, str], raw: Any) -> None:
    response = client.post("/api/bets", json={"raw_transaction": raw}, headers=auth(tokens["alice"]))

    assert response.status_code == 422
    assert response.json()["field"] == "raw_transaction"


def test_claim_rejects_place_bet(client: TestClient, tokens: dict[str, str]) -> None:
    issued = get_quote(client, tokens["alice"])

    response = client.post("/api/claims", json={"raw_transaction": sign(ALICE, place_bet_data(issued))}, headers=auth(tokens["alice"]))

    assert response.status_code == 422
    assert response.json()["field"] == "raw_transaction.function"


def test_claim_wrong_sender(client: TestClient, tokens: dict[str, str]) -> None:
    raw = sign(BOB, sportsbook_codec().encode("claim", [1]))

    response = client.post("/api/claims", json={"raw_transaction": raw}, headers=auth(tokens["alice"]))

    assert response.status_code == 422
    assert response.json()["field"] == "raw_transaction.from"


def test_bet_requires_token(client: TestClient) -> None:
    response = client.post("/api/bets", json={"raw_transaction": "0x00"})

    assert response.status_code == 401
