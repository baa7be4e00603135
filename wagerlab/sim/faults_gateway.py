"""The `gateway_restart` fault: a gateway killed while bets or claims wait in its retry queue.

chainapi is killed first, so the bets and claims that actors submit meanwhile get queued
at the gateway. Then the gateway is killed with SIGKILL and started again, and chainapi
after it. Every job that was queued must then be sent, each once: its row reaches `sent`
with a `tx_id`, and chainapi stores one transaction for its key.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from sqlmodel import Session, func, select

from wagerlab.platform.db import ChainTransaction, GatewayRetry, RetryStatus
from wagerlab.sim.outages import FaultResult

if TYPE_CHECKING:
    from wagerlab.sim.faults import FaultContext

logger = logging.getLogger(__name__)

QUEUE_WAIT_SECONDS = 5.0
"""How long chainapi stays down waiting for the first queued job. When no actor is submitting, none comes."""
QUEUE_SETTLE_SECONDS = 1.0
"""How long chainapi stays down after the first queued job, so that more of them queue."""
SEND_WAIT_SECONDS = 60.0
"""How long the restarted gateway may take to send every job that was queued."""


def gateway_restart(context: FaultContext) -> FaultResult:
    """Queue jobs at the gateway while chainapi is down, restart the gateway with SIGKILL, then check each job was sent once.

    Exercised when at least one job was queued at the kill.
    """
    from wagerlab.sim.faults import FaultError  # faults.py imports this module for its table of injectors

    config, stack = context.config, context.stack

    with stack.stopped("chainapi", config.chainapi_port) as chainapi_pid:
        queued = _wait_for_queued_jobs(context)
        gateway_pid = stack.kill_and_restart("gateway", config.gateway_port)
    logger.info("gateway_restart: chainapi and the gateway are back; waiting for %d queued jobs", len(queued))

    unsent = _wait_until_sent(context, queued)
    if unsent:
        raise FaultError(f"gateway_restart: {len(unsent)} of {len(queued)} queued jobs were not sent: {unsent}")
    duplicated = _keys_without_one_transaction(context, queued)
    if duplicated:
        raise FaultError(f"gateway_restart: these sent jobs do not have exactly one chainapi transaction: {duplicated}")
    restarts = f"killed chainapi (pid {chainapi_pid}), then killed the gateway (pid {gateway_pid}) with SIGKILL and restarted both"
    if not queued:
        detail = f"{restarts}; no bet or claim was submitted meanwhile, so none was queued"
    elif len(queued) == 1:
        detail = f"{restarts}; the one bet or claim queued at the gateway was sent once after the restarts"
    else:
        detail = f"{restarts}; the {len(queued)} bets or claims queued at the gateway were each sent once after the restarts"
    return FaultResult(detail, bool(queued), {"jobs_queued": len(queued)})


def _wait_for_queued_jobs(context: FaultContext) -> list[str]:
    """Return the keys of the queued jobs, once some have queued or QUEUE_WAIT_SECONDS passed."""
    deadline = time.monotonic() + QUEUE_WAIT_SECONDS
    keys = _queued_keys(context)
    while not keys and time.monotonic() < deadline:
        time.sleep(0.05)
        keys = _queued_keys(context)
    if keys:
        time.sleep(QUEUE_SETTLE_SECONDS)
        keys = _queued_keys(context)
    return keys


def _queued_keys(context: FaultContext) -> list[str]:
    with Session(context.engine) as session:
        return list(session.exec(select(GatewayRetry.key).where(GatewayRetry.status == RetryStatus.QUEUED)).all())


def _wait_until_sent(context: FaultContext, keys: list[str]) -> dict[str, str]:
    """Wait until every job under `keys` is sent; return the others with their status and last error."""
    deadline = time.monotonic() + SEND_WAIT_SECONDS
    while True:
        with Session(context.engine) as session:
            rows = session.exec(select(GatewayRetry).where(GatewayRetry.key.in_(keys))).all()
            unsent = {
                row.key: f"{row.status.value}, response {row.response_status}, last error {row.last_error}"
                for row in rows
                if not _sent_with_tx_id(row)
            }
        if not unsent or time.monotonic() > deadline:
            return unsent
        time.sleep(0.1)


def _sent_with_tx_id(row: GatewayRetry) -> bool:
    return row.status is RetryStatus.SENT and isinstance(row.response, dict) and "tx_id" in row.response


def _keys_without_one_transaction(context: FaultContext, keys: list[str]) -> dict[str, int]:
    with Session(context.engine) as session:
        query = (
            select(ChainTransaction.idempotency_key, func.count())
            .where(ChainTransaction.idempotency_key.in_(keys))
            .group_by(ChainTransaction.idempotency_key)
        )
        counts = dict(session.exec(query).all())
    return {key: counts.get(key, 0) for key in keys if counts.get(key, 0) != 1}
