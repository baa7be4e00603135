"""report.html: plots from the run's database, verdicts from report.json, and escaping."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from wagerlab.platform.db import (
    Alert,
    AlertSeverity,
    ChainEvent,
    ChainTransaction,
    Quote,
    TxStatus,
    User,
    create_tables,
    make_engine,
    write_session,
)
from wagerlab.sim.report_html import RunData, Series, read_run_data, render_report, svg_chart, write_report_html

START_MS = 1_800_000_000_000
"""started_at of the report below, in ms."""

REPORT: dict[str, Any] = {
    "scenario": "fight_night",
    "seed": 7,
    "ok": False,
    "started_at": "2027-01-15T08:00:00.000Z",
    "finished_at": "2027-01-15T08:01:00.000Z",
    "duration_seconds": 60.0,
    "counts": {"bets_placed": 2},
    "invariants": [
        {"name": "conservation", "ok": True, "detail": "3 accounts match"},
        {"name": "bets_match", "ok": False, "detail": "bet 2 differs: <script>alert(1)</script>"},
    ],
    "trace_digest": "ab" * 32,
    "faults": [
        {"kind": "kill_monitors", "at": "betting", "detail": "SIGKILL"},
        {"kind": "db_lock", "at": "mid-claims", "detail": "held 3 s", "exercised": False, "evidence": {"applied_after_release": 0}},
    ],
    "alerts": [],
    "attacks": [],
    "errors": [],
}


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    create_tables(engine)
    return engine


def event(tx_hash: str, log_index: int, name: str, monitor: str, applied_at: int, **args: Any) -> ChainEvent:
    return ChainEvent(
        chain_id=1, tx_hash=tx_hash, log_index=log_index, block_number=log_index + 1, block_hash="0x" + "bb" * 32,
        event=name, monitor=monitor, args=args, applied_at=applied_at,
    )


def fill(engine: Engine) -> None:
    with write_session(engine) as session:
        session.add(User(id=1, username="alice", password_hash="x", address="0x" + "a1" * 20))
        session.flush()
        session.add(ChainTransaction(tx_id="t1", idempotency_key="k1", kind="relay", function="placeBet", sender="0x", tx_hash="0x01", status=TxStatus.MINED, created_at=START_MS + 10_000))
        session.add(event("0x01", 0, "BetPlaced", "bets", START_MS + 10_250, stake=5_000_000))
        session.add(event("0x02", 1, "BetPlaced", "bets", START_MS + 12_000, stake=7_000_000))
        session.add(event("0x03", 2, "Deposited", "deposits", START_MS + 9_000, amount=1))
        for offset, odds in ((8_000, 2_500_000), (11_000, 2_100_000)):
            session.add(Quote(nonce=str(offset), user_id=1, bettor="0x", market_id=4, outcome=1, odds=odds, max_stake=1, expiry=1, signature="0x", created_at=START_MS + offset))
        session.add(Alert(rule="monitor_down", severity=AlertSeverity.CRITICAL, source="supervisor", detail="bets down", created_at=START_MS + 11_500))


def test_read_run_data_series(engine: Engine) -> None:
    fill(engine)

    data = read_run_data(engine)

    assert data.bets == [(START_MS + 10_250, 5_000_000), (START_MS + 12_000, 7_000_000)]
    assert data.quotes == [(START_MS + 8_000, 4, 1, 2_500_000), (START_MS + 11_000, 4, 1, 2_100_000)]
    assert data.lag == [(START_MS + 10_250, "bets", 250)]
    assert data.alerts == [(START_MS + 11_500, "monitor_down", "critical", "bets down")]


def test_render_report_sections(engine: Engine) -> None:
    fill(engine)

    page = render_report(REPORT, read_run_data(engine))

    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 3
    assert "<h3>market 4</h3>" in page
    assert '<td class="failed">FAILED</td>' in page
    assert '<td class="ok">held</td>' in page
    assert "<title>monitor_down</title>" in page
    assert "kill_monitors at betting: SIGKILL" in page
    assert "db_lock at mid-claims (not exercised): held 3 s" in page


def test_render_report_escapes_text(engine: Engine) -> None:
    page = render_report(REPORT, RunData())

    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_render_report_offline() -> None:
    page = render_report(REPORT, RunData(bets=[(START_MS + 1_000, 1)]))

    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert "<script" not in page


def test_write_report_html_without_database(tmp_path: Path) -> None:
    path = write_report_html(tmp_path, REPORT, None)

    page = path.read_text()
    assert path == tmp_path / "report.html"
    assert "no data" in page
    assert "no quotes were issued" in page
    assert not (tmp_path / "report.html.partial").exists()


def test_write_report_html_broken_database(tmp_path: Path, engine: Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE chain_events")

    page = write_report_html(tmp_path, REPORT, engine).read_text()

    assert "conservation" in page
    assert "no data" in page


def polyline_points(svg: str) -> list[tuple[float, float]]:
    match = re.search(r'points="([^"]+)"', svg)
    assert match is not None
    return [tuple(float(part) for part in pair.split(",")) for pair in match.group(1).split()]  # type: ignore[misc]


def test_svg_chart_step_line() -> None:
    svg = svg_chart([Series("bets", [(0.0, 1.0), (10.0, 2.0)], step=True)], y_label="bets")

    points = polyline_points(svg)
    assert len(points) == 3
    assert points[1][0] == points[2][0]
    assert points[0][1] == points[1][1]
    assert points[2][1] < points[1][1]


def test_svg_chart_single_point() -> None:
    svg = svg_chart([Series("lag", [(5.0, 0.0)], dots=True)], y_label="ms")

    assert svg.count("<circle") == 1
    assert "nan" not in svg.lower()
