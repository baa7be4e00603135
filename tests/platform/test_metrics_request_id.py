"""The request id: generated at the api, carried to chainapi, stored on the transaction, logged by monitors."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from api_fixtures import ADMIN_TOKEN, Chain, chain, chainapi_server, db, make_config  # noqa: F401
from monitor_fixtures import ALICE, LogFactory
from monitor_fixtures import make_config as make_monitor_config
from monitor_fixtures import make_database
from sqlalchemy.engine import Engine
from sqlmodel import select
from starlette.testclient import TestClient

from wagerlab.logs import (
    REQUEST_ID_HEADER,
    JsonFormatter,
    LogFormatError,
    RequestIdFilter,
    accepted_request_id,
    make_formatter,
    request_id_var,
)
from wagerlab.platform.api.chainapi_client import ChainapiClient
from wagerlab.platform.db import ChainTransaction, TxStatus, read_session, write_session
from wagerlab.platform.monitors import DepositsMonitor
from wagerlab.platform.monitors.events import ChainLog
from wagerlab.platform.quotes import WallClock

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self.addFilter(RequestIdFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """Every record at INFO and above, with `request_id` set by the filter the services use."""
    root = logging.getLogger()
    handler, level = ListHandler(), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler.records
    root.removeHandler(handler)
    root.setLevel(level)


def access_lines(records: list[logging.LogRecord], service: str) -> list[logging.LogRecord]:
    return [record for record in records if record.name == "wagerlab.access" and getattr(record, "service", None) == service]


def test_request_id_api_to_chainapi_row(
    chain: Chain, chainapi_server: tuple[str, Any], db: tuple[str, Engine], records: list[logging.LogRecord]  # noqa: F811
) -> None:
    from wagerlab.platform.app import build_api_app

    base_url, _ = chainapi_server
    url, engine = db
    client = ChainapiClient(httpx.AsyncClient(base_url=base_url, timeout=30))
    app = build_api_app(make_config(url, chain.deployment, rpc_url=chain.url), engine=engine, chainapi_client=client, clock=WallClock())

    with TestClient(app) as api:
        response = api.post("/api/admin/pause", headers={**ADMIN, REQUEST_ID_HEADER: "trace-pause-1"})
        api.post("/api/admin/unpause", headers=ADMIN)

    assert response.status_code == 200, response.text
    assert response.headers[REQUEST_ID_HEADER] == "trace-pause-1"
    api_lines = [record for record in access_lines(records, "api") if record.request_id == "trace-pause-1"]
    assert len(api_lines) == 1
    assert api_lines[0].getMessage().startswith("api POST /api/admin/pause -> 200")
    chainapi_lines = [record for record in access_lines(records, "chainapi") if record.request_id == "trace-pause-1"]
    assert any(record.getMessage().startswith("chainapi POST /transactions -> 202") for record in chainapi_lines)
    assert any(record.getMessage().startswith("chainapi GET /transactions/{tx_id} -> 200") for record in chainapi_lines)
    with read_session(engine) as session:
        rows = {row.function: row for row in session.exec(select(ChainTransaction))}
    assert rows["pause"].request_id == "trace-pause-1"
    assert rows["unpause"].request_id is not None
    assert rows["unpause"].request_id != "trace-pause-1"


def test_request_id_generated_when_missing(db: tuple[str, Engine]) -> None:  # noqa: F811
    from wagerlab.platform.app import build_api_app

    url, engine = db
    with TestClient(build_api_app(make_config(url), engine=engine, clock=WallClock())) as api:
        first = api.get("/api/health").headers[REQUEST_ID_HEADER]
        second = api.get("/api/health").headers[REQUEST_ID_HEADER]

    assert len(first) == 32
    assert first != second


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("abc-123", True),
        ("gw:7f.3_x", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("bad id", False),
        ("line\nbreak", False),
        ("", False),
    ],
)
def test_accepted_request_id_table(incoming: str, kept: bool) -> None:
    result = accepted_request_id(incoming)

    assert (result == incoming) is kept
    assert 1 <= len(result) <= 128


def test_monitor_log_carries_request_id(tmp_path: Any, records: list[logging.LogRecord]) -> None:
    url, engine = make_database(tmp_path)
    raw = LogFactory().log("Deposited", 5, 0, account=ALICE.lower(), amount=3_000_000)
    with write_session(engine) as session:
        session.add(
            ChainTransaction(
                tx_id="t1", idempotency_key="k1", kind="relay", function="deposit", sender=ALICE,
                tx_hash=raw["transactionHash"], status=TxStatus.MINED, request_id="trace-deposit-9",
            )
        )
    monitor = DepositsMonitor(make_monitor_config(url), engine)

    monitor.apply_log(ChainLog.from_rpc(raw))

    applied = [record for record in records if "applied Deposited" in record.getMessage()]
    assert len(applied) == 1
    assert applied[0].request_id == "trace-deposit-9"
    assert request_id_var.get() is None


def test_monitor_log_without_known_tx(tmp_path: Any, records: list[logging.LogRecord]) -> None:
    url, engine = make_database(tmp_path)
    monitor = DepositsMonitor(make_monitor_config(url), engine)

    monitor.apply_log(ChainLog.from_rpc(LogFactory().log("Deposited", 5, 0, account=ALICE.lower(), amount=1)))

    applied = [record for record in records if "applied Deposited" in record.getMessage()]
    assert applied[0].request_id == "-"


def test_json_formatter_fields() -> None:
    record = logging.LogRecord("wagerlab.test", logging.WARNING, __file__, 1, "bet %s rejected", (7,), None)
    record.request_id = "r-1"
    record.service = "api"

    line = json.loads(JsonFormatter().format(record))

    assert line["message"] == "bet 7 rejected"
    assert line["level"] == "WARNING"
    assert line["logger"] == "wagerlab.test"
    assert line["request_id"] == "r-1"
    assert line["service"] == "api"
    assert line["time"].endswith("Z")


def test_json_formatter_exception() -> None:
    try:
        raise ValueError("odds 0 invalid")
    except ValueError:
        import sys

        record = logging.LogRecord("wagerlab.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())

    line = json.loads(JsonFormatter().format(record))

    assert "ValueError: odds 0 invalid" in line["exception"]
    assert line["request_id"] == "-"


def test_make_formatter_rejects_unknown() -> None:
    with pytest.raises(LogFormatError, match="invalid log format 'xml'"):
        make_formatter("xml")


def test_migrations_add_request_id_column(tmp_path: Any) -> None:
    from sqlalchemy import inspect

    from wagerlab.platform.db import make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    migrate(engine)

    columns = {column["name"]: column for column in inspect(engine).get_columns("chain_transactions")}
    assert "request_id" in columns
    assert columns["request_id"]["nullable"] is True


def test_cli_log_format_reaches_children(monkeypatch: pytest.MonkeyPatch) -> None:
    from wagerlab.cli import LOG_FORMAT_ENV, main

    monkeypatch.delenv(LOG_FORMAT_ENV, raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        assert main(["--log-format", "json", "compile", "--quiet"]) == 0
        added = [handler for handler in root.handlers if handler not in handlers]
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)

    assert os.environ[LOG_FORMAT_ENV] == "json"
    assert len(added) == 1
    assert isinstance(added[0].formatter, JsonFormatter)
