"""Detect a reorganization the monitor did not see as removed logs, and roll back to the common ancestor.

A monitor remembers the hash of each block it finished scanning, and every applied log's
`chain_events` row stores its block hash. When the head changes, the monitor compares the
highest of those blocks with the canonical chain. A different hash means a reorg replaced
blocks the monitor had finished, which with `confirmations = N` is a reorg deeper than N
blocks. The monitor then walks down to the highest block whose hash still matches (the
common ancestor), reverses every event of its own above it in one transaction, moves its
cursor back to the ancestor and raises a `deep_reorg` alert. The next catch-up re-applies
the logs of the new blocks.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from wagerlab.platform.alerts import raise_alert
from wagerlab.platform.db import AlertSeverity, ChainEvent, write_session
from wagerlab.platform.monitors import cursor
from wagerlab.platform.monitors.events import ChainLog, DecodedEvent
from wagerlab.platform.monitors.ledger import reverse_legs

if TYPE_CHECKING:
    from web3 import AsyncWeb3

    from wagerlab.platform.monitors.base import LogMonitor

logger = logging.getLogger(__name__)

KNOWN_EVENT_ROWS = 256
"""How many of a monitor's newest `chain_events` rows supply block hashes to compare."""
REMEMBERED_BLOCKS = 256
"""How many scanned block hashes a monitor keeps in memory."""
# NOTE: scanned hashes live only in memory, so after a restart only event rows supply
# hashes. Suppose a reorg during the downtime adds logs only to blocks after the monitor's
# last event and at or before its cursor. Then nothing notices it until reconciliation
# compares balances. Storing the cursor block's hash in `monitor_cursors` would close that gap.
ALERT_RULE = "deep_reorg"


def remember_scanned(monitor: LogMonitor, block_number: int, block_hash: str) -> None:
    """Store the hash of a block the monitor finished, keeping the newest `REMEMBERED_BLOCKS`."""
    monitor.scanned_hashes[block_number] = block_hash.lower()
    for old in sorted(monitor.scanned_hashes)[:-REMEMBERED_BLOCKS]:
        del monitor.scanned_hashes[old]


def known_block_hashes(monitor: LogMonitor) -> dict[int, str]:
    """Return block number to hash for the blocks of the monitor's newest events and scans."""
    statement = (
        select(ChainEvent.block_number, ChainEvent.block_hash)
        .where(ChainEvent.monitor == monitor.name)
        .order_by(col(ChainEvent.block_number).desc())
        .limit(KNOWN_EVENT_ROWS)
    )
    with Session(monitor.engine) as session:
        known = {number: block_hash.lower() for number, block_hash in session.exec(statement).all()}
    known.update(monitor.scanned_hashes)
    return known


async def check_reorg(monitor: LogMonitor, http: AsyncWeb3[Any], head: int) -> int | None:
    """Roll back when a block the monitor finished is no longer canonical; return the common ancestor."""
    known = await asyncio.to_thread(known_block_hashes, monitor)
    if not known:
        return None
    top = max(known)
    if top <= head and await _canonical_hash(http, top) == known[top]:
        return None

    ancestor = monitor.config.deployment.start_block - 1
    for number in sorted((number for number in known if number < top and number <= head), reverse=True):
        if await _canonical_hash(http, number) == known[number]:
            ancestor = number
            break
    reversed_count = await asyncio.to_thread(roll_back_to, monitor, ancestor)
    detail = (
        f"block {top} (hash {known[top]}) is no longer canonical, a reorg deeper than {monitor.config.confirmations} "
        f"confirmation(s); reversed {reversed_count} event(s) above the common ancestor block {ancestor} "
        f"and re-applying from block {ancestor + 1}"
    )
    await asyncio.to_thread(raise_alert, monitor.engine, ALERT_RULE, AlertSeverity.CRITICAL, monitor.name, detail)
    return ancestor


async def _canonical_hash(http: AsyncWeb3[Any], block_number: int) -> str | None:
    block = await http.eth.get_block(block_number)
    return None if block is None else "0x" + bytes(block["hash"]).hex()


def roll_back_to(monitor: LogMonitor, ancestor: int) -> int:
    """Reverse the monitor's events above block `ancestor`, newest first, in one transaction; return how many."""
    target = cursor.scanned_through(ancestor)
    statement = (
        select(ChainEvent)
        .where(ChainEvent.monitor == monitor.name, ChainEvent.block_number > ancestor)
        .order_by(col(ChainEvent.block_number).desc(), col(ChainEvent.log_index).desc())
    )
    with write_session(monitor.engine) as session:
        rows = list(session.exec(statement).all())
        for row in rows:
            assert row.id is not None
            monitor.handlers[row.event].reverse(session, DecodedEvent(row.event, dict(row.args), _log_of(monitor, row)))
            reverse_legs(session, row.id)
            session.delete(row)
        position = cursor.read_position(session, monitor.name, target)
        if position > target:
            cursor.write_position(session, monitor.name, target)
            position = target

    monitor.scanned_hashes = {number: block_hash for number, block_hash in monitor.scanned_hashes.items() if number <= ancestor}
    monitor.health.cursor_block, monitor.health.cursor_log_index = position
    monitor.health.events_reversed += len(rows)
    logger.error("monitor %s rolled back %d event(s) to the common ancestor block %d", monitor.name, len(rows), ancestor)
    return len(rows)


def _log_of(monitor: LogMonitor, row: ChainEvent) -> ChainLog:
    """Rebuild the removed log of an event row; reverse handlers read only its position and hashes."""
    return ChainLog(
        address=monitor.address,  # type: ignore[arg-type]
        topics=(),
        data=b"",
        block_number=row.block_number,
        block_hash=row.block_hash,  # type: ignore[arg-type]
        tx_hash=row.tx_hash,  # type: ignore[arg-type]
        log_index=row.log_index,
        removed=True,
    )
