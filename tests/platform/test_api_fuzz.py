"""A schema-driven fuzz run of the REST API: no 500, and every response matches the OpenAPI schema.

Bounded by `max_examples` per operation, so the whole run stays within seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from api_fixtures import ADMIN_TOKEN, FAST_PASSWORDS, add_market, make_config
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi import checks as openapi_checks
from starlette.testclient import TestClient

from wagerlab.platform.app import build_api_app
from wagerlab.platform.db import create_tables, make_engine
from wagerlab.platform.quotes import WallClock

MAX_EXAMPLES = 10


@schemathesis.check
def no_internal_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """Fail on 500 and on any 5xx but 502 and 503, which report an unreachable node or chainapi.

    The fuzzed api has no chainapi behind it, so transactions get a documented 503.
    """
    if response.status_code >= 500 and response.status_code not in (502, 503):
        raise AssertionError(f"{case.method} {case.path} returned {response.status_code}: {response.text[:300]}")
    return None


CHECKS = [
    no_internal_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]
ADDRESS = "0x" + "ab" * 20


@pytest.fixture(scope="module")
def api_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'platform.db'}"
    engine = make_engine(url)
    create_tables(engine)
    add_market(engine, 1, [2_000_000, 1_900_000])
    app = build_api_app(make_config(url), engine=engine, clock=WallClock())
    app.state.api.passwords = FAST_PASSWORDS
    yield app


@pytest.fixture(scope="module")
def bearer(api_app: Any) -> dict[str, str]:
    # Without `with`, so the app's lifespan never runs and never closes its chainapi client.
    client = TestClient(api_app)
    client.post("/api/register", json={"username": "fuzzer", "password": "correct horse", "address": ADDRESS})
    token = client.post("/api/login", json={"username": "fuzzer", "password": "correct horse"}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def api_schema(api_app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/api/openapi.json", api_app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_fuzz_no_server_error(case: Any, bearer: dict[str, str]) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"} if case.path.startswith("/api/admin") else bearer
    case.call_and_validate(headers=headers, checks=CHECKS)


def test_openapi_lists_every_route(api_app: Any) -> None:
    document = TestClient(api_app).get("/api/openapi.json").json()

    assert document["openapi"].startswith("3.1")
    assert "/api/bets" in document["paths"]
    assert set(document["paths"]["/api/bets"]) == {"get", "post"}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/register", {"username": "ok-name", "password": "short", "address": ADDRESS}, "password"),
        ("/api/register", {"username": "ok-name", "password": "long enough", "address": "0x12"}, "address"),
        ("/api/quotes", {"market_id": 1, "outcome": 0, "stake": "ten"}, "stake"),
        ("/api/quotes", {"market_id": 1, "outcome": 0}, "stake"),
        ("/api/bets", {"raw_transaction": "not hex"}, "raw_transaction"),
    ],
)
def test_malformed_input_names_field(api_app: Any, bearer: dict[str, str], path: str, body: dict[str, Any], field: str) -> None:
    response = TestClient(api_app).post(path, json=body, headers=bearer)

    assert 400 <= response.status_code < 500
    assert response.json()["field"] == field


