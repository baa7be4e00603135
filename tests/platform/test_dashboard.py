"""The dashboard's page, static files and JSON state on the api."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_fixtures import ADMIN_TOKEN, FAST_PASSWORDS, ServerThread, add_market, auth, db, make_config, register_and_login  # noqa: F401
from monitor_fixtures import make_config as make_monitor_config
from monitor_fixtures import make_database
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from wagerlab.platform.alerts import raise_alert
from wagerlab.platform.dashboard.state import cache_state, format_odds, format_tokens
from wagerlab.platform.db import AlertSeverity, Bet, BetStatus, ChainTransaction, Correction, TxStatus, write_session
from wagerlab.platform.errors import ServiceUnavailableError
from wagerlab.platform.monitors import Supervisor, build_monitors
from wagerlab.platform.monitors.health import MonitorState
from wagerlab.platform.monitors.supervisor import build_health_app
from wagerlab.platform.quotes import WallClock

ADMIN = auth(ADMIN_TOKEN)
ALICE = "0x" + "a1" * 20


def closed_port() -> int:
    """Return a loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_client(db: tuple[str, Engine], monitors_port: int) -> TestClient:  # noqa: F811
    from wagerlab.platform.app import build_api_app

    url, engine = db
    app = build_api_app(make_config(url, monitors_port=monitors_port), engine=engine, clock=WallClock())
    app.state.api.passwords = FAST_PASSWORDS
    return TestClient(app)


@pytest.fixture
def client(db: tuple[str, Engine]) -> Iterator[TestClient]:  # noqa: F811
    add_market(db[1], 3, [1_850_000, 2_100_000])
    with make_client(db, closed_port()) as test_client:
        yield test_client


def add_bet(engine: Engine, bet_id: int, stake: int, status: BetStatus = BetStatus.OPEN) -> None:
    with write_session(engine) as session:
        session.add(
            Bet(bet_id=bet_id, bettor=ALICE, market_id=3, outcome=1, stake=stake, odds=2_100_000, payout=stake * 21 // 10,
                nonce=str(bet_id), status=status, tx_hash="0x" + f"{bet_id:064x}", block_number=bet_id)
        )


def add_guardian_tx(engine: Engine, tx_id: str, function: str, status: TxStatus, updated_at: int) -> None:
    with write_session(engine) as session:
        session.add(ChainTransaction(tx_id=tx_id, idempotency_key=tx_id, kind="operator", function=function, sender="0x", status=status, updated_at=updated_at))


def test_page_and_static_files(client: TestClient) -> None:
    page = client.get("/dashboard")
    script = client.get("/dashboard/static/dashboard.js")
    style = client.get("/dashboard/static/dashboard.css")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script defer src="/dashboard/static/dashboard.js">' in page.text
    assert 'id="pause"' in page.text
    assert script.status_code == 200
    assert "/dashboard/state" in script.text
    assert style.status_code == 200


def test_state_needs_admin_token(client: TestClient) -> None:
    token = register_and_login(client, "alice", ALICE)

    assert client.get("/dashboard/state").status_code == 401
    assert client.get("/dashboard/state", headers=auth(token)).status_code == 401
    assert client.get("/dashboard/state", headers=auth("wrong")).status_code == 401


def test_state_markets_and_bets(client: TestClient, db: tuple[str, Engine]) -> None:  # noqa: F811
    add_bet(db[1], 1, 5_000_000)
    add_bet(db[1], 2, 2_500_001, BetStatus.WON)

    state = client.get("/dashboard/state", headers=ADMIN).json()

    assert state["markets"] == [
        {"market_id": 3, "name": "market 3", "status": "open", "outcomes": ["outcome 0", "outcome 1"], "odds": ["1.85", "2.10"], "version": 1}
    ]
    assert state["bets"]["total"] == 2
    assert state["bets"]["open"] == 1
    assert state["bets"]["stake_total"] == "7.500001"
    assert [bet["bet_id"] for bet in state["bets"]["recent"]] == [2, 1]
    assert state["bets"]["recent"][0]["stake"] == "2.500001"
    assert state["poll_interval_ms"] == 1000


def test_state_alerts_and_reconciliation(client: TestClient, db: tuple[str, Engine]) -> None:  # noqa: F811
    raise_alert(db[1], "monitor_down", AlertSeverity.CRITICAL, "supervisor", "bets monitor down")
    with write_session(db[1]) as session:
        session.add(Correction(kind="available", subject=ALICE, before={"available": 1}, after={"available": 2}, reason="chain has 2", block_number=9))

    state = client.get("/dashboard/state", headers=ADMIN).json()

    assert state["alerts"]["total"] == 1
    assert state["alerts"]["recent"][0]["rule"] == "monitor_down"
    assert state["alerts"]["recent"][0]["severity"] == "critical"
    assert state["reconciliation"]["corrections"] == 1
    assert state["reconciliation"]["latest"]["subject"] == ALICE


def test_state_last_guardian_call(client: TestClient, db: tuple[str, Engine]) -> None:  # noqa: F811
    assert client.get("/dashboard/state", headers=ADMIN).json()["last_guardian_call"] is None

    add_guardian_tx(db[1], "p1", "pause", TxStatus.MINED, 1_000)
    assert client.get("/dashboard/state", headers=ADMIN).json()["last_guardian_call"]["function"] == "pause"

    add_guardian_tx(db[1], "u1", "unpause", TxStatus.REVERTED, 3_000)
    assert client.get("/dashboard/state", headers=ADMIN).json()["last_guardian_call"]["function"] == "pause"

    add_guardian_tx(db[1], "u2", "unpause", TxStatus.MINED, 2_000)
    assert client.get("/dashboard/state", headers=ADMIN).json()["last_guardian_call"]["function"] == "unpause"


class FixedPause:
    def __init__(self, value: bool | Exception) -> None:
        self.value = value

    async def paused(self) -> bool:
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


@pytest.mark.parametrize(
    ("pause", "expected"),
    [(FixedPause(True), True), (FixedPause(False), False), (FixedPause(ServiceUnavailableError("the chain node is unreachable")), None)],
)
def test_state_paused_from_chain(client: TestClient, pause: FixedPause, expected: bool | None) -> None:
    client.app.state.api.pause = pause  # type: ignore[attr-defined]

    assert client.get("/dashboard/state", headers=ADMIN).json()["paused"] is expected


def test_state_monitors_unreachable(client: TestClient) -> None:
    monitors = client.get("/dashboard/state", headers=ADMIN).json()["monitors"]

    assert monitors["status"] == "unreachable"
    assert "ConnectError" in monitors["error"]
    assert monitors["monitors"] == {}


def test_state_monitors_health(db: tuple[str, Engine], tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "monitors").mkdir()
    url, engine = make_database(tmp_path / "monitors")
    monitors = build_monitors(make_monitor_config(url), engine)
    for monitor in monitors:
        monitor.health.state = MonitorState.LIVE
        monitor.health.cursor_block, monitor.health.cursor_log_index, monitor.health.head_block = 4, -1, 6
    server = ServerThread(build_health_app(Supervisor(monitors)), "monitors-health")
    port = int(server.start().rsplit(":", 1)[1])
    try:
        with make_client(db, port) as client:
            state = client.get("/dashboard/state", headers=ADMIN).json()
    finally:
        server.stop()

    assert state["monitors"]["status"] == "ok"
    assert state["monitors"]["monitors"]["bets"]["lag_blocks"] == 3


def test_state_cache_hit_ratio(client: TestClient) -> None:
    token = register_and_login(client, "alice", ALICE)
    assert client.get("/dashboard/state", headers=ADMIN).json()["cache"]["hit_ratio"] is None
    for _ in range(4):
        client.get("/api/markets/3/odds", headers=auth(token))

    cache = client.get("/dashboard/state", headers=ADMIN).json()["cache"]

    assert cache["hits"] + cache["misses"] == 4
    assert cache["hit_ratio"] == round(cache["hits"] / 4, 4)


@pytest.mark.parametrize(
    ("amount", "text"),
    [(0, "0.000000"), (1, "0.000001"), (1_000_000, "1.000000"), (12_500_000, "12.500000"), (-3_000_001, "-3.000001"), (2**63 - 1, "9223372036854.775807")],
)
def test_format_tokens_table(amount: int, text: str) -> None:
    assert format_tokens(amount) == text


@pytest.mark.parametrize(("odds", "text"), [(1_000_001, "1.00"), (2_500_000, "2.50"), (1_859_999, "1.85"), (12_000_000, "12.00")])
def test_format_odds_table(odds: int, text: str) -> None:
    assert format_odds(odds) == text


def test_cache_state_ratio() -> None:
    stats: dict[str, Any] = {"strategy": "ttl", "hits": 3, "misses": 1}

    assert cache_state(stats) == {"strategy": "ttl", "hits": 3, "misses": 1, "hit_ratio": 0.75}


def test_static_files_one_metrics_label(client: TestClient) -> None:
    client.get("/dashboard/static/dashboard.js")
    client.get("/dashboard/static/dashboard.css")

    metrics = client.get("/metrics").text

    assert 'route="/dashboard/static/{path}",service="api",status="200"} 2.0' in metrics
