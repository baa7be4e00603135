"""The checks of the gateway_restart fault, on rows written straight into the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy.engine import Engine

from wagerlab.platform.db import ChainTransaction, GatewayRetry, RetryStatus, create_tables, make_engine, write_session
from wagerlab.sim import faults_gateway


@pytest.fixture
def context(tmp_path: Path) -> SimpleNamespace:
    engine = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    create_tables(engine)
    return SimpleNamespace(engine=engine)


def add_job(engine: Engine, key: str, status: RetryStatus, response: object = None, *, relayed: bool = False) -> None:
    """Store a retry row and, when `relayed`, the chainapi transaction its send created."""
    with write_session(engine) as session:
        session.add(GatewayRetry(key=key, method="POST", path="/api/bets", headers={}, body=b"{}", status=status, response=response))
        if relayed:
            session.add(ChainTransaction(tx_id=f"tx-{key}", idempotency_key=key, kind="relay", function="placeBet", sender="0x" + "11" * 20))


def test_queued_keys_lists_only_queued(context: SimpleNamespace) -> None:
    add_job(context.engine, "0xa1", RetryStatus.QUEUED)
    add_job(context.engine, "0xa2", RetryStatus.SENT, {"tx_id": "t"})
    add_job(context.engine, "0xa3", RetryStatus.FAILED)

    assert faults_gateway._queued_keys(context) == ["0xa1"]


def test_wait_until_sent_reports_unsent_jobs(context: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faults_gateway, "SEND_WAIT_SECONDS", 0.0)
    add_job(context.engine, "0xb1", RetryStatus.SENT, {"tx_id": "t1", "tx_hash": "0xb1"})
    add_job(context.engine, "0xb2", RetryStatus.QUEUED)
    add_job(context.engine, "0xb3", RetryStatus.SENT, {"error": "invalid_field", "detail": "quote expired"})
    add_job(context.engine, "0xb4", RetryStatus.FAILED)

    unsent = faults_gateway._wait_until_sent(context, ["0xb1", "0xb2", "0xb3", "0xb4"])

    assert sorted(unsent) == ["0xb2", "0xb3", "0xb4"]
    assert unsent["0xb2"].startswith("queued")
    assert unsent["0xb3"].startswith("sent")
    assert unsent["0xb4"].startswith("failed")


def test_one_transaction_per_sent_job(context: SimpleNamespace) -> None:
    add_job(context.engine, "0xc1", RetryStatus.SENT, {"tx_id": "t1"}, relayed=True)
    add_job(context.engine, "0xc2", RetryStatus.SENT, {"tx_id": "t2"})

    assert faults_gateway._keys_without_one_transaction(context, ["0xc1", "0xc2"]) == {"0xc2": 0}


class StandInStack:
    """Stops and restarts nothing; at the gateway's restart it sends every queued job, as the real gateway would."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def stopped(self, name: str, port: int) -> Iterator[int]:
        yield 101

    def kill_and_restart(self, name: str, port: int) -> int:
        for key in faults_gateway._queued_keys(SimpleNamespace(engine=self.engine)):
            with write_session(self.engine) as session:
                row = session.get(GatewayRetry, key)
                assert row is not None
                row.status, row.response = RetryStatus.SENT, {"tx_id": f"tx-{key}"}
                session.add(row)
                session.add(ChainTransaction(tx_id=f"tx-{key}", idempotency_key=key, kind="relay", function="placeBet", sender="0x" + "11" * 20))
        return 102


def restart_context(engine: Engine) -> SimpleNamespace:
    return SimpleNamespace(engine=engine, config=SimpleNamespace(chainapi_port=1, gateway_port=2), stack=StandInStack(engine))


def test_restart_without_queued_jobs_not_exercised(context: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faults_gateway, "QUEUE_WAIT_SECONDS", 0.0)

    result = faults_gateway.gateway_restart(restart_context(context.engine))  # type: ignore[arg-type]

    assert not result.exercised
    assert result.evidence == {"jobs_queued": 0}
    assert "none was queued" in result.detail


def test_restart_with_queued_jobs_exercised(context: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faults_gateway, "QUEUE_SETTLE_SECONDS", 0.0)
    add_job(context.engine, "0xd1", RetryStatus.QUEUED)
    add_job(context.engine, "0xd2", RetryStatus.QUEUED)

    result = faults_gateway.gateway_restart(restart_context(context.engine))  # type: ignore[arg-type]

    assert result.exercised
    assert result.evidence == {"jobs_queued": 2}
    assert "the 2 bets or claims queued at the gateway were each sent once" in result.detail
