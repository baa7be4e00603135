"""Reads and writes of the `gateway_retries` rows behind the retry queue.

Each call blocks, so the queue runs it in a worker thread.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from wagerlab.platform.db import GatewayRetry, RetryStatus, now_ms, write_session


def insert_or_load(engine: Engine, row: GatewayRetry) -> tuple[GatewayRetry, bool]:
    """Insert a queued row, or load the row already stored under its key; return it and whether this call queued it.

    A stored row that failed is queued again with the new request's headers and body,
    because its client submitted the transaction again. The commit happens before this
    returns, so the job survives a crash of the gateway from then on.
    """
    try:
        with write_session(engine) as session:
            stored = session.get(GatewayRetry, row.key)
            if stored is None:
                session.add(row)
                return row, True
            if stored.status is not RetryStatus.FAILED:
                return stored, False
            _requeue(stored, row)
            session.add(stored)
            return stored, True
    except IntegrityError:
        # Another gateway on this database inserted the key between the read and the insert.
        stored = load(engine, row.key)
        if stored is None:
            raise
        return stored, False


def _requeue(stored: GatewayRetry, row: GatewayRetry) -> None:
    stored.headers, stored.body, stored.token_sha256 = row.headers, row.body, row.token_sha256
    stored.status, stored.attempts, stored.last_error = RetryStatus.QUEUED, 0, None
    stored.response_status, stored.response = None, None
    stored.updated_at = now_ms()


def record_attempt(engine: Engine, key: str, attempts: int, last_error: str | None) -> None:
    with write_session(engine) as session:
        stored = session.get(GatewayRetry, key)
        if stored is not None:
            stored.attempts, stored.last_error, stored.updated_at = attempts, last_error, now_ms()
            session.add(stored)


def finish(
    engine: Engine, key: str, status: RetryStatus, *, attempts: int, last_error: str | None, response_status: int | None, response: Any
) -> GatewayRetry | None:
    """Store a job's final status, sends and response, and drop its stored Authorization header.

    Return the row as stored, or None when no row has the key. Several gateways on one
    database may each send a resumed job, so a `failed` status never replaces a `sent`
    one that another gateway stored: the row stays `sent` and is returned unchanged.
    """
    with write_session(engine) as session:
        # FOR UPDATE makes PostgreSQL order two gateways finishing one key; SQLite's write lock already does.
        stored = session.get(GatewayRetry, key, with_for_update=True)
        if stored is None:
            return None
        if not (status is RetryStatus.FAILED and stored.status is RetryStatus.SENT):
            stored.status, stored.attempts, stored.last_error = status, attempts, last_error
            stored.response_status, stored.response = response_status, response
            stored.headers = {name: value for name, value in stored.headers.items() if name != "authorization"}
            stored.updated_at = now_ms()
            session.add(stored)
        return GatewayRetry(**stored.model_dump())


def record_forwarded(engine: Engine, key: str, response_status: int, response: Any) -> bool:
    """Mark the job under `key` sent with the api's response, because its transaction got through directly.

    A bettor whose queued job failed may post the same signed transaction again once the api
    is back, and that request is forwarded without being queued. Without this update the job
    would still read `failed` though the bet was relayed. Return whether a row was changed.
    """
    with write_session(engine) as session:
        stored = session.get(GatewayRetry, key, with_for_update=True)
        if stored is None or stored.status is RetryStatus.SENT:
            return False
        stored.status, stored.last_error = RetryStatus.SENT, None
        stored.response_status, stored.response = response_status, response
        stored.headers = {name: value for name, value in stored.headers.items() if name != "authorization"}
        stored.updated_at = now_ms()
        session.add(stored)
        return True


def load_queued(engine: Engine) -> list[GatewayRetry]:
    with Session(engine) as session:
        rows = session.exec(select(GatewayRetry).where(GatewayRetry.status == RetryStatus.QUEUED).order_by(GatewayRetry.created_at))
        return [GatewayRetry(**row.model_dump()) for row in rows]


def load(engine: Engine, key: str) -> GatewayRetry | None:
    with Session(engine) as session:
        row = session.get(GatewayRetry, key)
        return None if row is None else GatewayRetry(**row.model_dump())
