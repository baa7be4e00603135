"""The `chain_transactions` rows of chainapi. The calls block, so run them in a worker thread."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from wagerlab.platform.db import ChainTransaction, TxStatus, now_ms, read_session, write_session


def _detached(row: ChainTransaction) -> ChainTransaction:
    """Copy a row so that it stays readable after its session closes."""
    return ChainTransaction(**row.model_dump())


def _by_key(session: Session, idempotency_key: str) -> ChainTransaction | None:
    query = select(ChainTransaction).where(ChainTransaction.idempotency_key == idempotency_key)
    return session.exec(query).first()


def insert_transaction(engine: Engine, **fields: Any) -> tuple[ChainTransaction, bool]:
    """Insert a pending row unless its idempotency key exists; return (row, created).

    On SQLite the write session holds the write lock from the first read, so two requests
    with one key cannot both insert. Elsewhere the unique index rejects the second insert
    and the existing row is read back.
    """
    row = ChainTransaction(tx_id=str(uuid.uuid4()), status=TxStatus.PENDING, **fields)
    try:
        with write_session(engine) as session:
            existing = _by_key(session, row.idempotency_key)
            if existing is not None:
                return _detached(existing), False
            session.add(row)
            session.flush()
            created = _detached(row)
        return created, True
    except IntegrityError:
        with read_session(engine) as session:
            existing = _by_key(session, row.idempotency_key)
            if existing is None:
                raise
            return _detached(existing), False


def update_transaction(engine: Engine, tx_id: str, *, only_if_pending: bool = False, **changes: Any) -> ChainTransaction:
    """Apply `changes` to a row and return it.

    With `only_if_pending`, a row that already has a final status is returned unchanged,
    so that the sender's bookkeeping after a send cannot overwrite what the receipt
    tracker stored in the meantime.
    """
    with write_session(engine) as session:
        # FOR UPDATE, so that on PostgreSQL the status check and the write see the same row
        # while the sender and the receipt tracker update it at once (SQLite ignores it and
        # holds the whole database's write lock instead).
        row = session.get(ChainTransaction, tx_id, with_for_update=True)
        if row is None:
            raise KeyError(f"chain transaction {tx_id!r} not found")
        if only_if_pending and row.status != TxStatus.PENDING:
            return _detached(row)
        for name, value in changes.items():
            setattr(row, name, value)
        row.updated_at = now_ms()
        session.add(row)
        session.flush()
        return _detached(row)


def get_transaction(engine: Engine, tx_id: str) -> ChainTransaction | None:
    with read_session(engine) as session:
        row = session.get(ChainTransaction, tx_id)
        return None if row is None else _detached(row)


def pending_transactions(engine: Engine) -> list[ChainTransaction]:
    with read_session(engine) as session:
        query = select(ChainTransaction).where(ChainTransaction.status == TxStatus.PENDING)
        return [_detached(row) for row in session.exec(query.order_by(ChainTransaction.created_at))]


def transaction_json(row: ChainTransaction) -> dict[str, Any]:
    """Return the fields every transaction response carries."""
    return {
        "tx_id": row.tx_id,
        "tx_hash": row.tx_hash,
        "status": TxStatus(row.status).value,
        "block_number": row.block_number,
        "error": row.error,
    }
