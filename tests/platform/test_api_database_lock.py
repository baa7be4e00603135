"""The api while another connection holds the SQLite write lock past the busy timeout: 503, never 500."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import select
from starlette.testclient import TestClient

from api_fixtures import FAST_PASSWORDS, auth, make_config, register_and_login
from wagerlab.platform.app import build_api_app
from wagerlab.platform.db import User, create_tables, make_engine, read_session
from wagerlab.platform.quotes import WallClock

BUSY_TIMEOUT_MS = 100
"""Short, so a write gives up at once instead of after the production 30 s."""
ALICE = "0x" + "a1" * 20


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, Engine, Path]]:
    path = tmp_path / "platform.db"
    engine = make_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _short_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    create_tables(engine)
    app = build_api_app(make_config(f"sqlite:///{path}"), engine=engine, clock=WallClock())
    app.state.api.passwords = FAST_PASSWORDS
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, engine, path


@contextlib.contextmanager
def write_locked(path: Path) -> Iterator[None]:
    """Hold the SQLite write lock from another connection, as `wagerlab fuzz`'s db_lock fault does."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_write_under_lock_is_503(api: tuple[TestClient, Engine, Path]) -> None:
    client, engine, path = api

    with write_locked(path):
        response = client.post("/api/register", json={"username": "alice", "password": "correct horse", "address": ALICE})

    assert response.status_code == 503
    assert response.json()["error"] == "service_unavailable"
    assert "database is locked" in response.json()["detail"]
    assert "try again in a few seconds" in response.json()["detail"]
    with read_session(engine) as session:
        assert session.exec(select(User)).all() == []


def test_read_under_lock_is_served(api: tuple[TestClient, Engine, Path]) -> None:
    client, _engine, path = api
    token = register_and_login(client, "alice", ALICE)

    with write_locked(path):
        response = client.get("/api/balance", headers=auth(token))

    assert response.status_code == 200
    assert response.json()["available"] == 0
