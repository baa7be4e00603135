"""Alembic environment: migrates the connection `upgrade_to_head` passes in, or the URL
from `sqlalchemy.url` (or env `WAGERLAB_DB_URL`) when run as `alembic upgrade head`."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import wagerlab.platform.db  # noqa: F401  (registers the tables on SQLModel.metadata)
from wagerlab.platform.db import make_engine

target_metadata = SQLModel.metadata


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite can change a table only by copying it; batch mode does that for ALTERs.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _database_url() -> str:
    url = os.environ.get("WAGERLAB_DB_URL") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: set WAGERLAB_DB_URL or sqlalchemy.url in alembic.ini")
    return url


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    engine = make_engine(_database_url())
    try:
        with engine.connect() as own_connection:
            _configure_and_run(own_connection.execution_options(sqlite_immediate=True))
            own_connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_online()
