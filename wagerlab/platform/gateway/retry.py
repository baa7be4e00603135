"""The queue of bet and claim submissions that failed because chainapi or the api was down.

A job is keyed by the transaction hash of its signed transaction, which is also the
idempotency key the api hands to chainapi. So a job enqueued twice is one job, and a send
that reached chainapi before the connection dropped gets the first `tx_id` back
instead of relaying the bet again. The node would reject a second copy anyway, because
the signed transaction carries its nonce.

Each job is a `gateway_retries` row, committed before the client gets 202, and a
gateway that starts resumes every row still queued. A gateway killed after a send
reached the api, but before it stored the outcome, sends that job again after its
restart. The idempotency key makes that second send return the first `tx_id`.
`retry_attempts` bounds the sends of one gateway process, so a resumed job starts its
backoff and its count of sends afresh: the upstream may have come back meanwhile.

The row keeps the bettor's `Authorization` header while the job is queued, because the
api accepts a bet or claim only with its owner's token. Storing it is safe enough here.
A reader of the row could see the bettor's bets and balance and request quotes, but not
move funds, because every bet, claim and withdrawal also needs a transaction signed by
the bettor's own wallet key. The token expires after the api's
`token_ttl_seconds`, and the row drops it once the job is sent or failed. The admin
token is never stored: a request carrying it is not queued. Neither the header nor the
token appears in any log line.

Several gateways on one database (`wagerlab up --nodes N`) each resume every queued row
at start, so a job may be sent once per gateway. The idempotency key keeps that to one
bet: the later sends get the first `tx_id` back. A gateway that runs out of sends while
another one sent the job takes the stored `sent` outcome instead of marking it failed.

NOTE: the jobs are not shared out between the gateways, so each one sends every resumed
job and the api receives up to one relay of it per gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from wagerlab.platform.db import GatewayRetry, RetryStatus
from wagerlab.platform.gateway import retry_store
from wagerlab.platform.gateway.errors import UpstreamUnavailableError
from wagerlab.platform.gateway.limits import GatewayLimits

logger = logging.getLogger(__name__)

Send = Callable[["RetryJob"], Awaitable[httpx.Response]]
"""Sends a job's request upstream once; raises httpx.TransportError when unreachable."""

REPLAY_HEADERS = frozenset({"authorization", "content-type", "user-agent", "x-forwarded-for", "x-request-id"})
"""The request headers a job stores and sends again; the api reads no others on bets and claims."""


def is_retryable(status_code: int) -> bool:
    """Return whether an upstream response means "not processed, try again later"."""
    return status_code in (502, 503, 504)


def replay_headers(headers: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower() in REPLAY_HEADERS}


@dataclass
class RetryJob:
    key: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: RetryStatus = RetryStatus.QUEUED
    attempts: int = 0
    last_error: str | None = None
    response_status: int | None = None
    response: Any = None
    token_sha256: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def from_row(cls, row: GatewayRetry) -> RetryJob:
        job = cls(
            key=row.key,
            method=row.method,
            path=row.path,
            headers=dict(row.headers),
            body=row.body,
            status=RetryStatus(row.status),
            attempts=row.attempts,
            last_error=row.last_error,
            response_status=row.response_status,
            response=row.response,
            token_sha256=row.token_sha256,
        )
        if job.status is not RetryStatus.QUEUED:
            job.done.set()
        return job

    def to_row(self) -> GatewayRetry:
        return GatewayRetry(
            key=self.key, method=self.method, path=self.path, headers=self.headers, body=self.body, token_sha256=self.token_sha256
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "idempotency_key": self.key,
            "status": self.status.value,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "response_status": self.response_status,
            "response": self.response,
        }


class RetryQueue:
    """Sends queued jobs again with exponential backoff until they get a final response."""

    def __init__(self, send: Send, limits: GatewayLimits, engine: Engine) -> None:
        self.send = send
        self.limits = limits
        self.engine = engine
        self.jobs: dict[str, RetryJob] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def enqueue(self, job: RetryJob) -> RetryJob:
        """Store and queue a job, or return the job already stored under the same key.

        Raises UpstreamUnavailableError when `retry_queue_jobs` jobs are already waiting or
        the database cannot store the job, because a job that is not stored could be lost.
        """
        existing = self.jobs.get(job.key)
        if existing is not None and existing.status is not RetryStatus.FAILED:
            return existing
        if len(self._tasks) >= self.limits.retry_queue_jobs:
            raise UpstreamUnavailableError(
                f"{job.path} is unavailable and the gateway's retry queue is full "
                f"({self.limits.retry_queue_jobs} jobs, the retry_queue_jobs limit): try again shortly"
            )
        try:
            row, queued = await asyncio.to_thread(retry_store.insert_or_load, self.engine, job.to_row())
        except SQLAlchemyError as err:
            logger.exception("storing the retry of %s %s under key %s failed", job.method, job.path, job.key)
            raise UpstreamUnavailableError(
                f"{job.path} is unavailable and the gateway could not store it for a retry ({type(err).__name__}): "
                "try again shortly"
            ) from err

        current = self.jobs.get(job.key)
        if current is not None and current.status is not RetryStatus.FAILED:
            return current  # a concurrent request with the same key stored it first

        stored = RetryJob.from_row(row)
        self.jobs[stored.key] = stored
        if stored.status is RetryStatus.QUEUED:
            # Besides a new row, this may be a row that an earlier gateway process or another
            # gateway on this database stored, and this process has no task for it yet.
            self._start(stored)
            logger.info("queued %s %s for retry under key %s (%s)", stored.method, stored.path, stored.key, "new" if queued else "stored earlier")
        return stored

    async def resume(self) -> int:
        """Start the jobs that a previous gateway process stored and did not finish; return their number."""
        rows = await asyncio.to_thread(retry_store.load_queued, self.engine)
        resumed = 0
        for row in rows:
            if row.key in self.jobs:
                continue
            job = RetryJob.from_row(row)
            self.jobs[job.key] = job
            self._start(job)
            resumed += 1
            logger.info("resumed %s %s under key %s after %d earlier sends", job.method, job.path, job.key, job.attempts)
        return resumed

    async def stored_job(self, key: str) -> RetryJob | None:
        """Return the job under `key`, from memory or from the rows of earlier gateway processes."""
        job = self.jobs.get(key)
        if job is not None:
            return job
        row = await asyncio.to_thread(retry_store.load, self.engine, key)
        return None if row is None else RetryJob.from_row(row)

    async def record_forwarded(self, key: str, response: httpx.Response) -> None:
        """Mark a stored job sent when its transaction was forwarded directly and the api accepted it."""
        try:
            body = response.json()
        except ValueError:
            body = response.text
        try:
            changed = await asyncio.to_thread(retry_store.record_forwarded, self.engine, key, response.status_code, body)
        except SQLAlchemyError:
            # The bet went through; only the job's record stays stale.
            logger.exception("marking retry %s sent after a direct forward failed", key)
            return
        job = self.jobs.get(key)
        if job is not None and job.status is not RetryStatus.SENT:
            job.status, job.last_error, job.response_status, job.response = RetryStatus.SENT, None, response.status_code, body
            job.headers.pop("authorization", None)
            job.done.set()
        if changed:
            logger.info("retry %s marked sent: its transaction was forwarded directly and got %d", key, response.status_code)

    def _start(self, job: RetryJob) -> None:
        task = asyncio.create_task(self._run(job), name=f"retry-{job.key[:10]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def delay_ms(self, attempt: int) -> int:
        return min(self.limits.retry_base_delay_ms * 2 ** (attempt - 1), self.limits.retry_max_delay_ms)

    async def _run(self, job: RetryJob) -> None:
        sends = 0
        while sends < self.limits.retry_attempts:
            sends += 1
            job.attempts += 1
            await asyncio.sleep(self.delay_ms(sends) / 1000)
            try:
                response = await self.send(job)
            except httpx.TransportError as err:
                job.last_error = f"{type(err).__name__}: {err}"
                logger.info("retry %d of %s failed: %s", job.attempts, job.key, job.last_error)
                await self._store_attempt(job)
                continue
            if is_retryable(response.status_code):
                job.last_error = f"upstream returned {response.status_code}"
                logger.info("retry %d of %s: upstream returned %d", job.attempts, job.key, response.status_code)
                await self._store_attempt(job)
                continue
            await self._finish(job, RetryStatus.SENT, response)
            logger.info("sent %s (key %s) on attempt %d: %d", job.path, job.key, job.attempts, response.status_code)
            return
        await self._finish(job, RetryStatus.FAILED, None)
        if job.status is RetryStatus.FAILED:
            logger.warning("gave up on %s %s (key %s) after %d sends: %s", job.method, job.path, job.key, job.attempts, job.last_error)

    async def _store_attempt(self, job: RetryJob) -> None:
        try:
            await asyncio.to_thread(retry_store.record_attempt, self.engine, job.key, job.attempts, job.last_error)
        except SQLAlchemyError:
            # Only the reported count of sends is stale now, so the next send goes on.
            logger.exception("storing attempt %d of retry %s failed", job.attempts, job.key)

    async def _finish(self, job: RetryJob, status: RetryStatus, response: httpx.Response | None) -> None:
        job.status = status
        if response is not None:
            job.response_status = response.status_code
            try:
                job.response = response.json()
            except ValueError:
                job.response = response.text
        job.headers.pop("authorization", None)
        try:
            stored = await asyncio.to_thread(
                retry_store.finish,
                self.engine,
                job.key,
                status,
                attempts=job.attempts,
                last_error=job.last_error,
                response_status=job.response_status,
                response=job.response,
            )
        except SQLAlchemyError:
            # The row stays queued, so a restarted gateway sends the job again. The
            # idempotency key makes that send return the first response.
            logger.exception("storing the %s status of retry %s failed", status.value, job.key)
        else:
            if stored is not None and stored.status is RetryStatus.SENT and status is RetryStatus.FAILED:
                job.status, job.response_status, job.response = RetryStatus.SENT, stored.response_status, stored.response
                logger.info("retry %s ran out of sends here, but another gateway sent it: %s", job.key, stored.response_status)
        job.done.set()

    async def close(self) -> None:
        """Cancel the retries in flight; their rows stay queued for the next gateway process."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        logger.info("retry queue closed with %d jobs still queued", sum(job.status is RetryStatus.QUEUED for job in self.jobs.values()))
