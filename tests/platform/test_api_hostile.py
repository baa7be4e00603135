"""Hostile request bodies get a 4xx naming the problem, never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from api_fixtures import db  # noqa: F401
from test_api_users import make_client


@pytest.fixture
def client(db: tuple[str, Engine]) -> Iterator[TestClient]:  # noqa: F811
    with make_client(db) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[" * 10_000 + "]" * 10_000, "JSON arrays and objects; the limit is"),
        ('{"username": "' + "a" * 70_000 + '"}', "bytes; the limit is"),
        ('{"username": ' + "9" * 5_000 + "}", "not acceptable JSON"),
        ("\xff\xfe", "not valid JSON"),
    ],
)
def test_register_rejects_unparseable_body(client: TestClient, body: str, expected: str) -> None:
    response = client.post("/api/register", content=body.encode("utf-8", "surrogateescape"), headers={"content-type": "application/json"})

    assert response.status_code == 400
    assert expected in response.json()["detail"]
