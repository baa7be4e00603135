"""The queue of bet and claim submissions that failed because chainapi or the api was down.

A job is keyed by the transaction hash of its signed transaction, which is also the
idempotency key the api hands to chainapi. So a job enqueued twice is one job, and a send
that reached chainapi before the connection dropped gets the first `tx_id` back
instead of relaying the bet again. The node would reject a second copy anyway, because
the signed transaction carries its nonce.

NOTE: the queue lives in the gateway's memory, so jobs still waiting when the gateway
stops are lost; the client can post the same signed transaction again.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from wagerlab.platform.gateway.limits import GatewayLimits

logger = logging.getLogger(__name__)

Send = Callable[["RetryJob"], Awaitable[httpx.Response]]
"""Sends a job's request upstream once; raises httpx.TransportError when unreachable."""


class JobStatus(str, enum.Enum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


def is_retryable(status_code: int) -> bool:
    """Return whether an upstream response means "not processed, try again later"."""
    return status_code in (502, 503, 504)


@dataclass
class RetryJob:
    key: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: JobStatus = JobStatus.QUEUED
    attempts: int = 0
    last_error: str | None = None
    response_status: int | None = None
    response: Any = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

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

    def __init__(self, send: Send, limits: GatewayLimits) -> None:
        self.send = send
        self.limits = limits
        self.jobs: dict[str, RetryJob] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def enqueue(self, job: RetryJob) -> RetryJob:
        """Queue a job, or return the job already queued under the same key."""
        existing = self.jobs.get(job.key)
        if existing is not None:
            return existing
        self.jobs[job.key] = job
        task = asyncio.create_task(self._run(job), name=f"retry-{job.key[:10]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        logger.info("queued %s %s for retry under key %s", job.method, job.path, job.key)
        return job

    def delay_ms(self, attempt: int) -> int:
        return min(self.limits.retry_base_delay_ms * 2 ** (attempt - 1), self.limits.retry_max_delay_ms)

    async def _run(self, job: RetryJob) -> None:
        while job.attempts < self.limits.retry_attempts:
            job.attempts += 1
            await asyncio.sleep(self.delay_ms(job.attempts) / 1000)
            try:
                response = await self.send(job)
            except httpx.TransportError as err:
                job.last_error = f"{type(err).__name__}: {err}"
                logger.info("retry %d of %s failed: %s", job.attempts, job.key, job.last_error)
                continue
            if is_retryable(response.status_code):
                job.last_error = f"upstream returned {response.status_code}"
                logger.info("retry %d of %s: upstream returned %d", job.attempts, job.key, response.status_code)
                continue
            self._finish(job, JobStatus.SENT, response)
            return
        job.status = JobStatus.FAILED
        job.done.set()
        logger.warning("gave up on %s %s (key %s) after %d sends: %s", job.method, job.path, job.key, job.attempts, job.last_error)

    def _finish(self, job: RetryJob, status: JobStatus, response: httpx.Response) -> None:
        job.status = status
        job.response_status = response.status_code
        try:
            job.response = response.json()
        except ValueError:
            job.response = response.text
        job.done.set()
        logger.info("sent %s (key %s) on attempt %d: %d", job.path, job.key, job.attempts, response.status_code)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
