"""The base log monitor: applies Sportsbook logs to the database exactly once.

Applying a log is one database transaction that inserts its `chain_events` row, applies
the event's effects, writes its ledger legs and moves the monitor's cursor. A crash at any
point inside leaves either all of that or none of it, so the cursor never runs ahead of or
behind the effects. The unique key of `chain_events` and the cursor together make a second
delivery of the same log a no-op.

`LogMonitor.run` is the network side, in `wagerlab.platform.monitors.follow`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from wagerlab.logs import request_id_var
from wagerlab.platform.config import PlatformConfig
from wagerlab.platform.db import ChainEvent, ChainTransaction, write_session
from wagerlab.platform.monitors import cursor
from wagerlab.platform.monitors.events import ChainLog, DecodedEvent, EventCodec
from wagerlab.platform.monitors.follow import LogFollower
from wagerlab.platform.monitors.health import MonitorHealth
from wagerlab.platform.monitors.ledger import (
    Leg,
    check_balanced,
    reverse_legs,
    write_legs,
)

logger = logging.getLogger(__name__)

PLANTED_BUG = os.environ.get("WAGERLAB_PLANT_BUG", "")
"""A bug planted on purpose to show that the fuzzer finds it; empty in normal use."""


@dataclass(frozen=True)
class EventHandler:
    """The database effects of one event: a function that applies them and one that undoes them.

    `apply` writes the event's state changes (bets, markets) and returns its ledger legs;
    the monitor writes the legs, which also move the `accounts` balances. `reverse` undoes
    the state changes of `apply`; the monitor undoes the legs.
    """

    apply: Callable[[Session, DecodedEvent], list[Leg]]
    reverse: Callable[[Session, DecodedEvent], None]


class ApplyOutcome(str, enum.Enum):
    APPLIED = "applied"
    REVERSED = "reversed"
    DUPLICATE = "duplicate"
    """The log's `chain_events` row exists already."""
    SKIPPED = "skipped"
    """The log sits at or before the monitor's cursor."""
    IGNORED = "ignored"
    """A removed log that was never applied, or a log of another contract."""


class _DuplicateEvent(Exception):
    """Raised inside the apply transaction to roll it back when the event row exists."""


class LogMonitor:
    """Mirrors a set of Sportsbook events into the database; subclasses name the events."""

    name: ClassVar[str]
    handlers: ClassVar[Mapping[str, EventHandler]]

    def __init__(
        self,
        config: PlatformConfig,
        engine: Engine,
        *,
        poll_interval: float = 0.25,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.config = config
        self.engine = engine
        self.codec = EventCodec.for_events(self.handlers)
        self.health = MonitorHealth(self.name)
        self.poll_interval = poll_interval
        """Seconds between head checks while idle, and between retries of a waiting event."""
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._default_position = cursor.start_position(config.deployment.start_block)
        self.scanned_hashes: dict[int, str] = {}
        """Hashes of blocks this monitor finished scanning, to detect a reorg below its cursor."""

    @property
    def chain_id(self) -> int:
        return self.config.deployment.chain_id

    @property
    def address(self) -> str:
        return self.config.deployment.sportsbook

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the chain until `stop` is set, reconnecting after every error."""
        await LogFollower(self).run(stop)

    # -- cursor -- #

    def read_position(self) -> cursor.Position:
        with Session(self.engine) as session:
            position = cursor.read_position(session, self.name, self._default_position)
        self._show_position(position)
        return position

    def mark_scanned(self, block_number: int) -> None:
        """Move the cursor past `block_number` after every log up to it was applied."""
        target = cursor.scanned_through(block_number)
        with write_session(self.engine) as session:
            position = cursor.read_position(session, self.name, self._default_position)
            if target > position:
                cursor.write_position(session, self.name, target)
                position = target
        self._show_position(position)

    def _show_position(self, position: cursor.Position) -> None:
        self.health.cursor_block, self.health.cursor_log_index = position

    # -- apply -- #

    def apply_log(self, log: ChainLog) -> ApplyOutcome:
        """Apply one log (or reverse it when `removed`) in one transaction."""
        if log.address.lower() != self.address.lower():
            logger.warning("monitor %s ignored log %s:%s of contract %s", self.name, log.tx_hash, log.log_index, log.address)
            return ApplyOutcome.IGNORED

        event = self.codec.decode(log)
        # Log lines about this event carry the id of the HTTP request that sent its transaction.
        token = request_id_var.set(self._request_id_of(log.tx_hash))
        try:
            if log.removed:
                return self._reverse(event)
            try:
                outcome = self._apply(event)
            except _DuplicateEvent:
                outcome = ApplyOutcome.DUPLICATE
            self._count(event, outcome)
            return outcome
        finally:
            request_id_var.reset(token)

    def _request_id_of(self, tx_hash: str) -> str | None:
        """Return the request id chainapi stored for the transaction, or None for one it did not send."""
        with Session(self.engine) as session:
            statement = select(ChainTransaction.request_id).where(ChainTransaction.tx_hash == tx_hash)
            return session.exec(statement).first()

    def _apply(self, event: DecodedEvent) -> ApplyOutcome:
        log = event.log
        if PLANTED_BUG == "cursor_before_apply":
            return self._apply_cursor_first(event)
        with write_session(self.engine) as session:
            position = cursor.read_position(session, self.name, self._default_position)
            if log.position <= position:
                return ApplyOutcome.SKIPPED

            row = self._insert_event_row(session, event)
            assert row.id is not None
            legs = self.handlers[event.name].apply(session, event)
            check_balanced(event.name, legs)
            write_legs(session, row.id, legs)
            cursor.write_position(session, self.name, log.position)
        self._show_position(log.position)
        return ApplyOutcome.APPLIED

    def _apply_cursor_first(self, event: DecodedEvent) -> ApplyOutcome:
        """Apply a log the wrong way: cursor and effects in two transactions.

        A deliberately planted bug for demonstrating `wagerlab fuzz` (see docs/FUZZING.md):
        a crash between the two commits loses the log, because the restarted monitor
        resumes after the cursor. Never selected unless WAGERLAB_PLANT_BUG names it.
        """
        log = event.log
        with write_session(self.engine) as session:
            if log.position <= cursor.read_position(session, self.name, self._default_position):
                return ApplyOutcome.SKIPPED
            cursor.write_position(session, self.name, log.position)
        with write_session(self.engine) as session:
            row = self._insert_event_row(session, event)
            assert row.id is not None
            legs = self.handlers[event.name].apply(session, event)
            check_balanced(event.name, legs)
            write_legs(session, row.id, legs)
        self._show_position(log.position)
        return ApplyOutcome.APPLIED

    def _insert_event_row(self, session: Session, event: DecodedEvent) -> ChainEvent:
        log = event.log
        if self._find_event_row(session, log) is not None:
            raise _DuplicateEvent
        row = ChainEvent(
            chain_id=self.chain_id,
            tx_hash=log.tx_hash,
            log_index=log.log_index,
            block_number=log.block_number,
            block_hash=log.block_hash,
            event=event.name,
            monitor=self.name,
            args=event.args,
        )
        session.add(row)
        try:
            session.flush()
        except IntegrityError as err:
            # Another writer inserted the same log between the check and the insert.
            raise _DuplicateEvent from err
        return row

    def _find_event_row(self, session: Session, log: ChainLog) -> ChainEvent | None:
        statement = select(ChainEvent).where(
            ChainEvent.chain_id == self.chain_id,
            ChainEvent.tx_hash == log.tx_hash,
            ChainEvent.log_index == log.log_index,
        )
        return session.exec(statement).first()

    def _count(self, event: DecodedEvent, outcome: ApplyOutcome) -> None:
        log = event.log
        if outcome is ApplyOutcome.APPLIED:
            self.health.events_applied += 1
            self.health.last_event_time = time.time()
            logger.info("monitor %s applied %s %s at block %s log %s", self.name, event.name, event.args, log.block_number, log.log_index)
        elif outcome is ApplyOutcome.DUPLICATE:
            self.health.duplicates += 1
            logger.debug("monitor %s skipped duplicate %s %s:%s", self.name, event.name, log.tx_hash, log.log_index)
        elif outcome is ApplyOutcome.SKIPPED:
            self.health.skipped += 1
            logger.debug("monitor %s skipped %s at %s, at or before its cursor", self.name, event.name, log.position)

    # -- reverse -- #

    def _reverse(self, event: DecodedEvent) -> ApplyOutcome:
        """Undo an applied event whose log a reorganization removed, and rewind the cursor."""
        log = event.log
        logger.warning("monitor %s received removed log %s %s:%s at block %s", self.name, event.name, log.tx_hash, log.log_index, log.block_number)
        with write_session(self.engine) as session:
            row = self._find_event_row(session, log)
            if row is None:
                logger.warning("monitor %s never applied removed log %s:%s; nothing to reverse", self.name, log.tx_hash, log.log_index)
                return ApplyOutcome.IGNORED
            if row.block_hash.lower() != log.block_hash.lower():
                # A reorg check already rolled the old copy back and applied the log again in its new block.
                logger.info("monitor %s keeps log %s:%s, applied again in block %s after the reorg", self.name, log.tx_hash, log.log_index, row.block_number)
                return ApplyOutcome.IGNORED

            assert row.id is not None
            self.handlers[event.name].reverse(session, event)
            reverse_legs(session, row.id)
            session.delete(row)
            before = (log.block_number, log.log_index - 1)
            position = cursor.read_position(session, self.name, self._default_position)
            if position > before:
                cursor.write_position(session, self.name, before)
                position = before

        self._show_position(position)
        self.health.events_reversed += 1
        self.health.last_event_time = time.time()
        return ApplyOutcome.REVERSED
