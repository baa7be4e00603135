"""The gateway's retry queue in the database: stored before 202, resumed by a new gateway, sent once."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import fakeredis
import httpx
import pytest
from gateway_fixtures import ADMIN, GatewayHarness, StandInApi, make_gateway
from sqlmodel import Session, select
from starlette.applications import Starlette
from test_gateway import signed_transaction

from wagerlab.platform.db import GatewayRetry, RetryStatus, write_session
from wagerlab.platform.gateway import build_gateway_app, retry_store
from wagerlab.platform.gateway.limits import GatewayLimits
from wagerlab.platform.gateway.retry import RetryJob, RetryQueue, replay_headers

pytestmark = pytest.mark.anyio

BETTOR = {"Authorization": "Bearer bettor-token", "Cookie": "session=abc"}
FAST_RETRIES = {"retry_base_delay_ms": 20, "retry_max_delay_ms": 50, "retry_inline_wait_ms": 1}


def stored_rows(harness: GatewayHarness) -> list[GatewayRetry]:
    with Session(harness.engine) as session:
        return list(session.exec(select(GatewayRetry).order_by(GatewayRetry.created_at)).all())


def restarted_gateway(harness: GatewayHarness, **security: int) -> Starlette:
    """Build a second gateway on the first one's database and upstream, as a restarted process would be."""
    config = harness.app.state.gateway.config
    return build_gateway_app(
        type(config)(**{**config.__dict__, "security": {**FAST_RETRIES, **security}}),
        engine=harness.engine,
        redis_client=fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer()),
        transport=httpx.ASGITransport(app=harness.upstream.app()),
        contract_monitor=False,
    )


def client_of(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("198.51.100.7", 40000)), base_url="http://gateway")


async def test_retry_row_stored_before_202(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path, upstream=StandInApi(down=True), security={**FAST_RETRIES, "retry_attempts": 1_000})
    raw = signed_transaction()
    async with harness.client() as client:
        queued = await client.post("/api/bets", json={"raw_transaction": raw}, headers=BETTOR)
    await harness.app.state.gateway.retries.close()

    rows = stored_rows(harness)
    assert queued.status_code == 202
    assert len(rows) == 1
    assert rows[0].key == queued.json()["idempotency_key"]
    assert rows[0].status is RetryStatus.QUEUED
    assert rows[0].path == "/api/bets"
    assert rows[0].headers["authorization"] == "Bearer bettor-token"
    assert "cookie" not in rows[0].headers
    assert raw in rows[0].body.decode()


async def test_restarted_gateway_sends_job_once(tmp_path: Path) -> None:
    upstream = StandInApi(down=True)
    harness = make_gateway(tmp_path, upstream=upstream, security={**FAST_RETRIES, "retry_attempts": 1_000})
    raw = signed_transaction()
    async with harness.client() as client:
        queued = (await client.post("/api/bets", json={"raw_transaction": raw}, headers=BETTOR)).json()
    # The first gateway stops without finishing its job, as a killed process would.
    await harness.app.state.gateway.retries.close()
    sends_before_restart = len(upstream.bet_authorizations)

    upstream.down = False
    second = restarted_gateway(harness)
    async with second.router.lifespan_context(second), client_of(second) as client:
        job = second.state.gateway.retries.jobs[queued["idempotency_key"]]
        await asyncio.wait_for(job.done.wait(), timeout=10)
        status = (await client.get(queued["retry_url"], headers=BETTOR)).json()
        again = await client.post("/api/bets", json={"raw_transaction": raw}, headers=BETTOR)

    rows = stored_rows(harness)
    assert upstream.bets == [queued["tx_hash"]]
    assert upstream.bet_authorizations[sends_before_restart:] == ["Bearer bettor-token", "Bearer bettor-token"]
    assert status["status"] == "sent"
    assert status["response"]["tx_id"] == "1"
    assert again.json()["tx_id"] == "1"
    assert len(rows) == 1
    assert rows[0].status is RetryStatus.SENT
    assert rows[0].response_status == 202
    assert rows[0].response == {"tx_id": "1", "tx_hash": queued["tx_hash"]}
    assert "authorization" not in rows[0].headers


async def test_retry_status_read_after_restart(tmp_path: Path) -> None:
    upstream = StandInApi(fail_next=1)
    harness = make_gateway(tmp_path, upstream=upstream, security={"retry_base_delay_ms": 10, "retry_inline_wait_ms": 30_000})
    async with harness.client() as client:
        answered = await client.post("/api/bets", json={"raw_transaction": signed_transaction(3)}, headers=BETTOR)

    second = restarted_gateway(harness)
    async with second.router.lifespan_context(second), client_of(second) as client:
        status = await client.get(f"/gateway/retries/{answered.json()['tx_hash']}", headers=BETTOR)
        unknown = await client.get("/gateway/retries/0x" + "00" * 32, headers=BETTOR)

    assert second.state.gateway.retries.jobs == {}
    assert status.status_code == 200
    assert status.json()["status"] == "sent"
    assert status.json()["attempts"] == 1
    assert unknown.status_code == 404
    assert "no queued submission" in unknown.json()["detail"]


async def test_duplicate_submission_stores_one_row(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path, upstream=StandInApi(down=True), security={**FAST_RETRIES, "retry_attempts": 1_000})
    raw = signed_transaction()
    async with harness.client() as client:
        first, second = await asyncio.gather(
            client.post("/api/bets", json={"raw_transaction": raw}, headers=BETTOR),
            client.post("/api/bets", json={"raw_transaction": raw}, headers=BETTOR),
        )
    await harness.app.state.gateway.retries.close()

    assert first.json()["idempotency_key"] == second.json()["idempotency_key"]
    assert len(stored_rows(harness)) == 1
    assert len(harness.app.state.gateway.retries.jobs) == 1


async def test_failed_job_queued_again_on_resubmit(tmp_path: Path) -> None:
    upstream = StandInApi(down=True)
    harness = make_gateway(tmp_path, upstream=upstream, security={**FAST_RETRIES, "retry_attempts": 2})
    raw = signed_transaction()
    async with harness.client() as client:
        queued = (await client.post("/api/bets", json={"raw_transaction": raw}, headers=BETTOR)).json()
        failed = harness.app.state.gateway.retries.jobs[queued["idempotency_key"]]
        await asyncio.wait_for(failed.done.wait(), timeout=10)
        failed_row = stored_rows(harness)[0]

        requeued = (await client.post("/api/bets", json={"raw_transaction": raw}, headers=BETTOR)).json()
        upstream.down = False
        job = harness.app.state.gateway.retries.jobs[queued["idempotency_key"]]
        await asyncio.wait_for(job.done.wait(), timeout=10)

    assert requeued["status"] == "queued"
    assert failed.status is RetryStatus.FAILED
    assert failed_row.status is RetryStatus.FAILED
    assert "authorization" not in failed_row.headers
    assert job is not failed
    assert job.status is RetryStatus.SENT
    assert stored_rows(harness)[0].status is RetryStatus.SENT
    assert upstream.bets == [queued["tx_hash"]]


async def test_admin_token_submission_not_queued(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path, upstream=StandInApi(down=True), security=FAST_RETRIES)
    async with harness.client() as client:
        response = await client.post("/api/bets", json={"raw_transaction": signed_transaction()}, headers=ADMIN)

    assert response.status_code == 503
    assert "admin token is never queued" in response.json()["detail"]
    assert stored_rows(harness) == []


async def test_full_retry_queue_rejects_submission(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path, upstream=StandInApi(down=True), security={**FAST_RETRIES, "retry_attempts": 1_000, "retry_queue_jobs": 1})
    async with harness.client() as client:
        first = await client.post("/api/bets", json={"raw_transaction": signed_transaction(0)}, headers=BETTOR)
        second = await client.post("/api/bets", json={"raw_transaction": signed_transaction(1)}, headers=BETTOR)
    await harness.app.state.gateway.retries.close()

    assert first.status_code == 202
    assert second.status_code == 503
    assert "retry queue is full (1 jobs" in second.json()["detail"]
    assert [row.key for row in stored_rows(harness)] == [first.json()["idempotency_key"]]


async def test_resume_skips_finished_rows(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path, upstream=StandInApi(), security=FAST_RETRIES)
    rows = [
        GatewayRetry(key=f"0x{index:064x}", method="POST", path="/api/bets", headers={}, body=b"{}", status=status)
        for index, status in enumerate(RetryStatus)
    ]
    with write_session(harness.engine) as session:
        session.add_all(rows)

    queued = retry_store.load_queued(harness.engine)

    assert [row.key for row in queued] == [rows[0].key]


def test_replay_headers_keep_only_needed() -> None:
    headers = {"authorization": "Bearer t", "content-type": "application/json", "cookie": "a=b", "x-forwarded-for": "192.0.2.1", "accept": "*/*"}

    assert replay_headers(headers) == {"authorization": "Bearer t", "content-type": "application/json", "x-forwarded-for": "192.0.2.1"}


def _queued_row(key: str) -> GatewayRetry:
    return GatewayRetry(key=key, method="POST", path="/api/bets", headers={"authorization": "Bearer t"}, body=b"{}")


async def test_failed_finish_keeps_sent_row(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path, security=FAST_RETRIES)
    key = "0x" + "ab" * 32
    retry_store.insert_or_load(harness.engine, _queued_row(key))

    retry_store.finish(harness.engine, key, RetryStatus.SENT, attempts=2, last_error=None, response_status=202, response={"tx_id": "t-1"})
    returned = retry_store.finish(harness.engine, key, RetryStatus.FAILED, attempts=8, last_error="ConnectError: down", response_status=None, response=None)
    row = retry_store.load(harness.engine, key)

    assert returned is not None
    assert returned.status is RetryStatus.SENT
    assert row is not None
    assert row.status is RetryStatus.SENT
    assert row.attempts == 2
    assert row.response_status == 202
    assert row.response == {"tx_id": "t-1"}
    assert "authorization" not in row.headers


async def test_failed_finish_replaces_queued_row(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path, security=FAST_RETRIES)
    key = "0x" + "cd" * 32
    retry_store.insert_or_load(harness.engine, _queued_row(key))

    returned = retry_store.finish(harness.engine, key, RetryStatus.FAILED, attempts=8, last_error="ConnectError: down", response_status=None, response=None)

    assert returned is not None
    assert returned.status is RetryStatus.FAILED
    assert returned.last_error == "ConnectError: down"
    assert retry_store.finish(harness.engine, "0x" + "ef" * 32, RetryStatus.SENT, attempts=1, last_error=None, response_status=202, response={}) is None


async def test_job_sent_by_other_gateway_not_failed(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path, upstream=StandInApi(down=True), security=FAST_RETRIES)
    key = "0x" + "12" * 32

    async def send_after_other_gateway(job: RetryJob) -> httpx.Response:
        # Another gateway on the database sends the job while this one still finds the api down.
        retry_store.finish(harness.engine, job.key, RetryStatus.SENT, attempts=1, last_error=None, response_status=202, response={"tx_id": "t-2"})
        raise httpx.ConnectError("api down")

    limits = GatewayLimits.from_overrides({**FAST_RETRIES, "retry_attempts": 2})
    queue = RetryQueue(send_after_other_gateway, limits, harness.engine)
    job = await queue.enqueue(RetryJob(key=key, method="POST", path="/api/bets", headers={}, body=b"{}"))
    await asyncio.wait_for(job.done.wait(), timeout=10)
    row = retry_store.load(harness.engine, key)

    assert job.status is RetryStatus.SENT
    assert job.response_status == 202
    assert job.response == {"tx_id": "t-2"}
    assert row is not None
    assert row.status is RetryStatus.SENT


async def test_direct_forward_marks_failed_job_sent(tmp_path: Path) -> None:
    upstream = StandInApi(down=True)
    harness = make_gateway(tmp_path, upstream=upstream, security={**FAST_RETRIES, "retry_attempts": 2})
    raw = signed_transaction(4)
    async with harness.client() as client:
        queued = (await client.post("/api/bets", json={"raw_transaction": raw}, headers=BETTOR)).json()
        failed = harness.app.state.gateway.retries.jobs[queued["idempotency_key"]]
        await asyncio.wait_for(failed.done.wait(), timeout=10)
        failed_status = (await client.get(queued["retry_url"], headers=BETTOR)).json()["status"]

        upstream.down = False
        again = await client.post("/api/bets", json={"raw_transaction": raw}, headers=BETTOR)
        status = (await client.get(queued["retry_url"], headers=BETTOR)).json()
    row = stored_rows(harness)[0]

    assert failed_status == "failed"
    assert again.status_code == 202
    assert "retry_url" not in again.json()
    assert upstream.bets == [queued["tx_hash"]]
    assert status["status"] == "sent"
    assert status["response"]["tx_id"] == again.json()["tx_id"]
    assert status["last_error"] is None
    assert row.status is RetryStatus.SENT
    assert row.response == again.json()
    assert "authorization" not in row.headers


async def test_retry_status_needs_owner_token(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path, upstream=StandInApi(down=True), security={**FAST_RETRIES, "retry_attempts": 1_000})
    async with harness.client() as client:
        queued = (await client.post("/api/bets", json={"raw_transaction": signed_transaction(5)}, headers=BETTOR)).json()
        anonymous = await client.get(queued["retry_url"])
        other = await client.get(queued["retry_url"], headers={"Authorization": "Bearer other-bettor-token"})
        owner = await client.get(queued["retry_url"], headers=BETTOR)
        admin = await client.get(queued["retry_url"], headers=ADMIN)
        unknown = await client.get("/gateway/retries/0x" + "00" * 32, headers=BETTOR)
    await harness.app.state.gateway.retries.close()

    assert anonymous.status_code == 401
    assert "bearer token that submitted it" in anonymous.json()["detail"]
    assert other.status_code == 401
    assert "did not submit the job" in other.json()["detail"]
    assert owner.status_code == 200
    assert owner.json()["status"] == "queued"
    assert admin.status_code == 200
    assert unknown.status_code == 404
    assert stored_rows(harness)[0].token_sha256 == hashlib.sha256(b"bettor-token").hexdigest()
