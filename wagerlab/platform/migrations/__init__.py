"""Alembic migrations of the platform database, and the upgrade every service runs at start.

Several processes may start on one database at once (the runner, api, chainapi and
monitors), so `upgrade_to_head` serializes them: on PostgreSQL with a transaction-scoped
advisory lock, on SQLite with `BEGIN IMMEDIATE`. The second process then finds the schema
at head and does nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent

ADVISORY_LOCK_KEY = 0x5761_6765_724C_6162 & 0x7FFF_FFFF_FFFF_FFFF
"""Key of the PostgreSQL advisory lock that migrating processes take (ASCII "WagerLab")."""


def alembic_config(url: str | None = None) -> Config:
    """Return an Alembic config for these migrations, independent of the working directory."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations directory has no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    """Return the revision the database is at, or None when it has no version table."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine) -> None:
    """Migrate the database to the newest revision; a database already at head is left alone.

    A database whose tables `create_tables` made (every table, no version table) is stamped
    at head instead, because its schema is the models' schema.
    """
    with engine.connect() as connection:
        connection = connection.execution_options(sqlite_immediate=True)
        with connection.begin():
            _lock(connection)
            config = alembic_config()
            config.attributes["connection"] = connection
            if _made_by_create_tables(connection):
                logger.warning("database has every table but no alembic_version; stamping it at head")
                command.stamp(config, "head")
            else:
                command.upgrade(config, "head")
    logger.info("database schema at revision %s", head_revision())


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY})")


def _made_by_create_tables(connection: Connection) -> bool:
    tables = set(inspect(connection).get_table_names())
    return "alembic_version" not in tables and set(SQLModel.metadata.tables) <= tables
