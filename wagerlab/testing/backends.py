"""Databases and Redis clients for tests: embedded by default, real servers when env names them.

`WAGERLAB_TEST_DB_URL` names a PostgreSQL database (created when missing). Each test gets
a new schema there, selected through the connection's search_path and dropped by
`drop_test_databases`. A schema costs far less to create and drop than a database.
`WAGERLAB_TEST_REDIS_URL` names a Redis database that belongs to the tests: it is flushed
before each use.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import fakeredis
import redis.asyncio
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from wagerlab.sim.backends import create_database_if_missing

logger = logging.getLogger(__name__)

DB_URL_ENV = "WAGERLAB_TEST_DB_URL"
REDIS_URL_ENV = "WAGERLAB_TEST_REDIS_URL"
_created_schemas: list[tuple[str, str]] = []
"""(server URL, schema) of each schema the tests created."""
_ready_databases: set[str] = set()


def server_db_url() -> str | None:
    return os.environ.get(DB_URL_ENV) or None


def server_redis_url() -> str | None:
    return os.environ.get(REDIS_URL_ENV) or None


def backend_names() -> tuple[str, str]:
    """Return the database and cache backend the tests use, e.g. ("postgresql", "redis")."""
    database = "postgresql" if server_db_url() else "sqlite"
    cache = "redis" if server_redis_url() else "fakeredis"
    return database, cache


def new_database_url(tmp_path: Path) -> str:
    """Return the URL of a new, empty database: SQLite in `tmp_path`, or a PostgreSQL schema."""
    base = server_db_url()
    if base is None:
        return f"sqlite:///{tmp_path / 'platform.db'}"

    schema = f"test_{uuid.uuid4().hex[:16]}"
    _execute(base, f'CREATE SCHEMA "{schema}"')
    _created_schemas.append((base, schema))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def drop_test_databases() -> None:
    """Drop every schema `new_database_url` created, with the tables and types inside."""
    while _created_schemas:
        base, schema = _created_schemas.pop()
        _execute(base, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _execute(url: str, statement: str) -> None:
    if url not in _ready_databases:
        create_database_if_missing(url)
        _ready_databases.add(url)
    engine = create_engine(make_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


async def new_redis_client() -> redis.asyncio.Redis:
    """Return an empty async Redis: fakeredis, or the flushed Redis database from env."""
    url = server_redis_url()
    if url is None:
        return fakeredis.FakeAsyncRedis()
    client = redis.asyncio.from_url(url)
    await client.flushdb()
    return client
