"""The schema migrations and the run's database preparation, on the selected database.

These run on SQLite by default and on PostgreSQL when `WAGERLAB_TEST_DB_URL` is set.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from wagerlab.platform.db import Account, ChainEvent, GatewayRetry, RetryStatus, create_tables, make_engine, migrate, write_session
from wagerlab.platform.migrations import alembic_config, current_revision, head_revision
from wagerlab.sim.backends import BackendError, clear_tables, prepare_database


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def schema_differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), SQLModel.metadata)


def test_migrated_schema_equals_models(engine: Engine) -> None:
    migrate(engine)

    assert current_revision(engine) == head_revision()
    assert schema_differences(engine) == []


def test_migrate_twice_changes_nothing(engine: Engine) -> None:
    migrate(engine)
    with write_session(engine) as session:
        session.add(Account(address="0x" + "ab" * 20, available=5))

    migrate(engine)

    with Session(engine) as session:
        assert session.get(Account, "0x" + "ab" * 20).available == 5


def test_migrate_stamps_create_tables_schema(engine: Engine) -> None:
    create_tables(engine)

    migrate(engine)

    assert current_revision(engine) == head_revision()
    assert schema_differences(engine) == []


def test_gateway_retries_migration_steps(engine: Engine) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
    tables_before = set(inspect(engine).get_table_names())

    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
    tables_at_head = set(inspect(engine).get_table_names())
    # The model has the columns of later steps, so the row is written at the head revision.
    migrate(engine)
    with write_session(engine) as session:
        session.add(GatewayRetry(key="0x" + "ab" * 32, method="POST", path="/api/bets", headers={"authorization": "Bearer t"}, body=b"\x00{}"))
    with Session(engine) as session:
        stored = session.get(GatewayRetry, "0x" + "ab" * 32)

    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0003")
    tables_after_downgrade = set(inspect(engine).get_table_names())
    migrate(engine)

    assert "gateway_retries" not in tables_before
    assert tables_at_head == tables_before | {"gateway_retries"}
    assert stored is not None
    assert stored.status is RetryStatus.QUEUED
    assert stored.body == b"\x00{}"
    assert stored.headers == {"authorization": "Bearer t"}
    assert tables_after_downgrade == tables_before
    assert schema_differences(engine) == []


def test_retry_token_migration_keeps_rows(engine: Engine) -> None:
    config = alembic_config()
    key = "0x" + "cd" * 32
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
        connection.execute(
            text("INSERT INTO gateway_retries (key, method, path, headers, body, status, attempts, created_at, updated_at) "
                 "VALUES (:key, 'POST', '/api/bets', '{}', :body, 'QUEUED', 0, 1, 1)"),
            {"key": key, "body": b"{}"},
        )
    columns_before = {column["name"] for column in inspect(engine).get_columns("gateway_retries")}

    migrate(engine)
    with Session(engine) as session:
        stored = session.get(GatewayRetry, key)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")
    columns_after_downgrade = {column["name"] for column in inspect(engine).get_columns("gateway_retries")}
    migrate(engine)

    assert "token_sha256" not in columns_before
    assert stored is not None
    assert stored.token_sha256 is None
    assert stored.status is RetryStatus.QUEUED
    assert columns_after_downgrade == columns_before
    assert schema_differences(engine) == []


def test_auth_tokens_migration_steps(engine: Engine) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
    tables_before = set(inspect(engine).get_table_names())

    migrate(engine)
    tables_at_head = set(inspect(engine).get_table_names())
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")
    tables_after_downgrade = set(inspect(engine).get_table_names())
    migrate(engine)

    assert tables_at_head == tables_before | {"auth_tokens"}
    assert tables_after_downgrade == tables_before
    assert schema_differences(engine) == []


def test_downgrade_to_base_and_back(engine: Engine) -> None:
    migrate(engine)
    config = alembic_config()

    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

    migrate(engine)
    assert schema_differences(engine) == []


def test_concurrent_migrations_all_succeed(database_url: str) -> None:
    """Services that start together migrate one database at once; each must succeed."""
    errors: list[BaseException] = []
    engines = [make_engine(database_url) for _ in range(3)]

    def run(engine: Engine) -> None:
        try:
            migrate(engine)
        except BaseException as err:  # collected for the assert below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for engine in engines:
        engine.dispose()

    assert errors == []
    checker = make_engine(database_url)
    assert schema_differences(checker) == []
    checker.dispose()


def test_big_chain_id_fits(engine: Engine) -> None:
    """The dev node's chain id is above 2**31; PostgreSQL rejects it in a 32-bit column."""
    migrate(engine)
    chain_id = 131277322940537
    with write_session(engine) as session:
        session.add(
            ChainEvent(
                chain_id=chain_id, tx_hash="0x" + "11" * 32, log_index=0, block_number=1,
                block_hash="0x" + "22" * 32, event="Deposited", monitor="deposits", args={},
            )
        )

    with Session(engine) as session:
        assert session.exec(select(ChainEvent.chain_id)).one() == chain_id


def test_prepare_database_empties_tables(database_url: str) -> None:
    first = prepare_database(database_url)
    with write_session(first) as session:
        session.add(Account(address="0x" + "cd" * 20, available=7))
    first.dispose()

    second = prepare_database(database_url)

    with Session(second) as session:
        assert session.exec(select(Account)).all() == []
    assert schema_differences(second) == []
    second.dispose()


def test_clear_tables_keeps_schema(engine: Engine) -> None:
    migrate(engine)
    with write_session(engine) as session:
        session.add(Account(address="0x" + "ef" * 20, staked=3))

    clear_tables(engine)

    with Session(engine) as session:
        assert session.exec(select(Account)).all() == []
    assert current_revision(engine) == head_revision()


def test_prepare_database_unreachable_server() -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:9/wagerlab_nowhere"
    with pytest.raises(BackendError, match=r"(?s)127.0.0.1:9.*check that the server runs"):
        prepare_database(url)


def test_prepare_database_without_name() -> None:
    with pytest.raises(BackendError, match="names no database"):
        prepare_database("postgresql+psycopg://postgres@127.0.0.1:5432")
