"""Backend selection for the whole suite.

By default tests use SQLite files and fakeredis. With `WAGERLAB_TEST_DB_URL` and
`WAGERLAB_TEST_REDIS_URL` set, the database and cache fixtures use those servers instead
(see `wagerlab.testing.backends`), which is how CI runs the backend-sensitive tests a
second time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wagerlab.testing.backends import backend_names, drop_test_databases, new_database_url


def pytest_report_header() -> str:
    database, cache = backend_names()
    return f"wagerlab backends: database {database}, cache {cache}"


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases() -> Iterator[None]:
    yield
    drop_test_databases()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """URL of a new, empty database on the backend this run selected."""
    return new_database_url(tmp_path)
