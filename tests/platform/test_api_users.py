"""Registration, login, bearer tokens and the error shape of the REST API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from eth_utils import to_checksum_address
from sqlalchemy.engine import Engine
from sqlmodel import select
from starlette.testclient import TestClient

from api_fixtures import FAST_PASSWORDS, auth, db, make_config, register_and_login  # noqa: F401
from wagerlab.platform.quotes import WallClock
from wagerlab.platform.app import build_api_app
from wagerlab.platform.db import User, read_session

ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20
VALID = {"username": "alice", "password": "correct horse", "address": ALICE}


def make_client(db: tuple[str, Engine], **overrides: Any) -> TestClient:
    url, engine = db
    app = build_api_app(make_config(url, **overrides), engine=engine, clock=WallClock())
    app.state.api.passwords = FAST_PASSWORDS
    return TestClient(app)


@pytest.fixture
def client(db: tuple[str, Engine]) -> Iterator[TestClient]:  # noqa: F811
    with make_client(db) as test_client:
        yield test_client


BAD_REGISTRATIONS = [
    ("username", None),
    ("username", "ab"),
    ("username", "a" * 65),
    ("username", "alice smith"),
    ("username", "alice/../x"),
    ("username", 12345),
    ("password", None),
    ("password", "short7c"),
    ("password", ["a list"]),
    ("address", None),
    ("address", "0x1234"),
    ("address", "a1" * 20),
    ("address", "0x" + "zz" * 20),
    ("address", "0x" + "a1" * 20 + "00"),
    ("address", "0xA1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"),
]


@pytest.mark.parametrize(("field", "value"), BAD_REGISTRATIONS)
def test_register_rejects_bad_field(client: TestClient, field: str, value: Any) -> None:
    body = dict(VALID)
    if value is None:
        del body[field]
    else:
        body[field] = value

    response = client.post("/api/register", json=body)

    assert response.status_code == 422
    payload = response.json()
    assert payload["error"] == "invalid_field"
    assert payload["field"] == field
    if value is not None and not isinstance(value, list):
        assert repr(value)[:20] in payload["detail"] or str(len(value)) in payload["detail"]


def test_register_stores_checksum_address(client: TestClient, db: tuple[str, Engine]) -> None:  # noqa: F811
    response = client.post("/api/register", json=VALID)

    assert response.status_code == 201
    payload = response.json()
    assert payload["address"] == to_checksum_address(ALICE)
    assert payload["address"] != ALICE
    assert payload["username"] == "alice"
    with read_session(db[1]) as session:
        user = session.get(User, payload["user_id"])
        assert user is not None
        assert user.address == payload["address"]
        assert user.password_hash.startswith("$argon2id$")
        assert "correct horse" not in user.password_hash


@pytest.mark.parametrize(
    ("second", "field"),
    [
        ({"username": "alice", "address": BOB}, "username"),
        ({"username": "alice2", "address": ALICE.upper().replace("0X", "0x")}, "address"),
    ],
)
def test_register_duplicate_conflicts(client: TestClient, second: dict[str, str], field: str) -> None:
    assert client.post("/api/register", json=VALID).status_code == 201

    response = client.post("/api/register", json={"password": "another password", **second})

    assert response.status_code == 409
    assert response.json()["field"] == field


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"'])
def test_register_rejects_non_object_body(client: TestClient, body: bytes) -> None:
    response = client.post("/api/register", content=body, headers={"content-type": "application/json"})

    assert response.status_code in (400, 422)
    assert set(response.json()) == {"error", "detail", "field"}


def test_login_returns_token(client: TestClient) -> None:
    client.post("/api/register", json=VALID)

    response = client.post("/api/login", json={"username": "alice", "password": "correct horse"})

    assert response.status_code == 200
    payload = response.json()
    assert payload["expires_in"] == 3600
    assert len(payload["token"]) >= 43
    assert client.get("/api/balance", headers=auth(payload["token"])).json() == {"available": 0, "staked": 0}


@pytest.mark.parametrize(("username", "password"), [("alice", "wrong password"), ("nobody", "correct horse")])
def test_login_wrong_credentials_unauthorized(client: TestClient, username: str, password: str) -> None:
    client.post("/api/register", json=VALID)

    response = client.post("/api/login", json={"username": username, "password": password})

    assert response.status_code == 401
    assert response.json()["detail"] == "invalid username or password"


def test_login_does_not_store_plain_token(client: TestClient) -> None:
    token = register_and_login(client, "alice", ALICE)

    cache = client.app.state.api.cache  # type: ignore[attr-defined]
    keys = client.portal.call(cache.client.keys, "*")  # type: ignore[union-attr]
    assert keys
    assert all(token.encode() not in key for key in keys)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}, {"Authorization": "Bearer not-a-token"}],
)
def test_bearer_token_required(client: TestClient, headers: dict[str, str]) -> None:
    for path in ("/api/markets", "/api/bets", "/api/balance", "/api/deposit", "/api/markets/1/odds"):
        response = client.get(path, headers=headers)

        assert response.status_code == 401, path
        assert response.json()["error"] == "unauthorized"


def test_user_token_is_not_admin(client: TestClient) -> None:
    token = register_and_login(client, "alice", ALICE)

    response = client.post("/api/admin/pause", headers=auth(token))

    assert response.status_code == 401
    assert "admin token" in response.json()["detail"]


def test_token_expires(db: tuple[str, Engine]) -> None:  # noqa: F811
    with make_client(db, token_ttl_seconds=1) as client:
        token = register_and_login(client, "alice", ALICE)
        assert client.get("/api/balance", headers=auth(token)).status_code == 200

        time.sleep(1.2)
        response = client.get("/api/balance", headers=auth(token))

    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_unknown_route_error_shape(client: TestClient) -> None:
    response = client.get("/api/nothing-here")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_stats_counts_requests_by_route(client: TestClient) -> None:
    token = register_and_login(client, "alice", ALICE)
    client.get("/api/bets", headers=auth(token))
    client.get("/api/bets/7", headers=auth(token))

    requests = client.get("/api/stats").json()["requests"]

    assert requests["POST /api/register"] == 1
    assert requests["POST /api/login"] == 1
    assert requests["GET /api/bets"] == 1
    assert requests["GET /api/bets/{bet_id}"] == 1


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_register_concurrent_duplicates(db: tuple[str, Engine], anyio_backend: str) -> None:  # noqa: F811
    import anyio
    import httpx

    url, engine = db
    app = build_api_app(make_config(url), engine=engine, clock=WallClock())
    app.state.api.passwords = FAST_PASSWORDS
    statuses: list[int] = []

    async def register(client: httpx.AsyncClient, index: int) -> None:
        body = {"username": "alice", "password": "correct horse", "address": "0x" + f"{index:040x}"}
        statuses.append((await client.post("/api/register", json=body)).status_code)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        async with anyio.create_task_group() as group:
            for index in range(1, 9):
                group.start_soon(register, client, index)

    assert sorted(statuses) == [201] + [409] * 7
    with read_session(engine) as session:
        assert len(session.exec(select(User)).all()) == 1
