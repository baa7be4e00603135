"""Prepare the database and the Redis cache of one run, embedded or on servers the user names.

With the embedded pair the run directory contains a new SQLite file each run and the cache
lives in fakeredis inside the api process. With `--db URL` and `--redis URL` the run uses
those servers: the runner creates the PostgreSQL database when it is missing, migrates it
to head and empties every platform table, and deletes the cache's odds and token keys, so
each run starts from the same empty state as an embedded one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import SQLModel

from wagerlab.platform.db import make_engine, migrate

logger = logging.getLogger(__name__)

CACHE_KEY_PATTERNS = ("odds:*", "token:*")
"""Key patterns of `wagerlab.platform.cache`; other keys in the Redis database are kept."""

MAINTENANCE_DATABASE = "postgres"


class BackendError(Exception):
    """A database or Redis server named on the command line cannot be used."""


@dataclass(frozen=True)
class Backends:
    """The servers a run uses; None selects the embedded SQLite file or fakeredis."""

    db_url: str | None = None
    redis_url: str | None = None


def sqlite_url(run_dir: Path) -> str:
    return f"sqlite:///{(run_dir / 'platform.db').resolve()}"


def prepare_database(url: str) -> Engine:
    """Return an engine on an empty platform schema at the newest migration."""
    if make_url(url).get_backend_name() == "postgresql":
        create_database_if_missing(url)
    engine = make_engine(url)
    try:
        migrate(engine)
    except OperationalError as err:
        raise BackendError(f"migrating database {_safe(url)} failed: {err.orig}; check that the server runs and the URL is right") from err
    clear_tables(engine)
    return engine


def create_database_if_missing(url: str) -> None:
    """Create the PostgreSQL database the URL names, connecting to the `postgres` database."""
    target = make_url(url)
    name = target.database
    if not name:
        raise BackendError(f"database URL {_safe(url)} names no database; add one, e.g. .../wagerlab_run")
    admin = create_engine(target.set(database=MAINTENANCE_DATABASE), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}).first()
            if exists is None:
                quoted = admin.dialect.identifier_preparer.quote(name)
                connection.exec_driver_sql(f"CREATE DATABASE {quoted}")
                logger.info("created database %s", name)
    except OperationalError as err:
        raise BackendError(f"connecting to PostgreSQL at {_safe(url)} failed: {err.orig}; check that the server runs") from err
    finally:
        admin.dispose()


def clear_tables(engine: Engine) -> None:
    """Delete every row of the platform tables, children first; the schema stays."""
    tables = list(reversed(SQLModel.metadata.sorted_tables))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            names = ", ".join(connection.dialect.identifier_preparer.quote(table.name) for table in tables)
            connection.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY")
        else:
            for table in tables:
                connection.execute(table.delete())
    logger.info("cleared %d platform tables", len(tables))


def clear_cache(url: str) -> int:
    """Delete the platform cache's keys from the Redis database at `url`; return how many."""
    client = redis.Redis.from_url(url)
    try:
        deleted = 0
        for pattern in CACHE_KEY_PATTERNS:
            keys = list(client.scan_iter(match=pattern, count=500))
            if keys:
                deleted += client.delete(*keys)
    except redis.RedisError as err:
        raise BackendError(f"clearing the cache at {url} failed: {err}; check that Redis runs and the URL is right") from err
    finally:
        client.close()
    logger.info("deleted %d cache keys from %s", deleted, url)
    return deleted


def _safe(url: str) -> str:
    """Render a database URL with its password hidden, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)
