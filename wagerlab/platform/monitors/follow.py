"""The network side of a monitor: subscribe, backfill, follow, and reconnect on errors.

One connection goes like this. The monitor subscribes to the Sportsbook's logs over
WebSocket first and buffers what arrives, then backfills with `eth_getLogs` over HTTP from
its cursor to the head, then drains the buffer and follows the stream. Because the
subscription starts before the backfill, every log is in the backfill or in the buffer or
in both, and the cursor check drops the second copy. A notification of a log past the
cursor makes the monitor read the logs from its cursor with `eth_getLogs`, so logs are
applied in chain order even when the stream delivers them out of order. When the monitor is idle it requests
the head block number and backfills again, which moves its cursor to the head even when no
log arrives. The settlement monitor relies on that to know the bets monitor has passed a
block.

Any error closes the connection. The monitor then backs off exponentially and starts again
with a new subscription and a backfill from the cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from web3 import AsyncHTTPProvider, AsyncWeb3, WebSocketProvider

from wagerlab.platform.monitors.errors import DependencyNotReadyError, SubscriptionClosedError
from wagerlab.platform.monitors.events import ChainLog
from wagerlab.platform.monitors.health import MonitorState
from wagerlab.platform.monitors.reorg import check_reorg, remember_scanned

if TYPE_CHECKING:
    from wagerlab.platform.monitors.base import LogMonitor

logger = logging.getLogger(__name__)

WAIT_WARNING_SECONDS = 30.0
"""How long an event may wait for another monitor before the wait is logged as a warning."""


class MonitorStopped(Exception):
    """Raised inside a monitor's loop when its stop event is set, to leave without applying more."""


class Backoff:
    """Exponential delays: initial, doubled after each failure, capped at `maximum`."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self._next = initial

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = self.initial


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    """Sleep for `seconds`; return early when `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


class LogFollower:
    """Runs one monitor against the node until its stop event is set."""

    def __init__(self, monitor: LogMonitor) -> None:
        self.monitor = monitor
        self.health = monitor.health
        self.backoff = Backoff(monitor.backoff_initial, monitor.backoff_max)
        self.failures = 0
        """Failures since the monitor was last live."""
        self.warned_head_behind = False
        self.last_head_hash: str | None = None
        """Hash of the head at the last catch-up; a different one triggers a reorg check."""

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, backfill and follow; on any error back off, reconnect and backfill again."""
        name = self.monitor.name
        logger.info("monitor %s starting for Sportsbook %s", name, self.monitor.address)
        while not stop.is_set():
            try:
                await self._run_connection(stop)
            except MonitorStopped:
                break
            except Exception as err:
                await self._back_off(err, stop)
        self.health.state = MonitorState.STOPPED
        logger.info("monitor %s stopped at cursor %s", name, (self.health.cursor_block, self.health.cursor_log_index))

    async def _back_off(self, err: Exception, stop: asyncio.Event) -> None:
        delay = self.backoff.next_delay()
        self.health.record_error(err)
        self.health.restarts += 1
        self.health.state = MonitorState.BACKOFF
        self.failures += 1
        position = (self.health.cursor_block, self.health.cursor_log_index)
        if self.failures == 1:
            logger.error("monitor %s failed at cursor %s: %s; reconnecting in %.2f s", self.monitor.name, position, err, delay, exc_info=err)
        else:
            # Later failures of the same outage get one line each, without the traceback.
            logger.warning("monitor %s failed again (%d in a row) at cursor %s: %s; reconnecting in %.2f s", self.monitor.name, self.failures, position, err, delay)
        await sleep_unless_stopped(stop, delay)

    async def _run_connection(self, stop: asyncio.Event) -> None:
        config = self.monitor.config
        self.health.state = MonitorState.CONNECTING
        await asyncio.to_thread(self.monitor.read_position)
        http = AsyncWeb3(AsyncHTTPProvider(config.rpc_url, exception_retry_configuration=None))
        try:
            async with AsyncWeb3(WebSocketProvider(config.ws_url, max_connection_retries=1)) as ws:
                buffer: asyncio.Queue[Any] = asyncio.Queue()
                subscription_id = await ws.eth.subscribe("logs", self._log_filter())
                logger.info("monitor %s subscribed to logs at %s as %s", self.monitor.name, config.ws_url, subscription_id)
                reader = asyncio.create_task(self._read_stream(ws, buffer), name=f"{self.monitor.name}-stream")
                try:
                    await self._follow(http, buffer, stop)
                finally:
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reader
        finally:
            await http.provider.disconnect()

    def _log_filter(self) -> dict[str, Any]:
        return {"address": self.monitor.address, "topics": [self.monitor.codec.topics]}

    async def _read_stream(self, ws: AsyncWeb3[Any], buffer: asyncio.Queue[Any]) -> None:
        """Move subscription messages into `buffer`; end it with the error that ended the stream."""
        try:
            async for message in ws.socket.process_subscriptions():
                buffer.put_nowait(message["result"])
        except Exception as err:
            buffer.put_nowait(err)
            return
        buffer.put_nowait(SubscriptionClosedError(f"log subscription of monitor {self.monitor.name} ended"))

    async def _follow(self, http: AsyncWeb3[Any], buffer: asyncio.Queue[Any], stop: asyncio.Event) -> None:
        self.health.state = MonitorState.BACKFILLING
        await self._catch_up(http, stop)
        self.health.state = MonitorState.LIVE
        self.backoff.reset()
        self.failures = 0
        logger.info("monitor %s is live at cursor %s", self.monitor.name, (self.health.cursor_block, self.health.cursor_log_index))

        while not stop.is_set():
            try:
                item = await asyncio.wait_for(buffer.get(), timeout=self.monitor.poll_interval)
            except TimeoutError:
                await self._catch_up(http, stop)
                continue
            if isinstance(item, BaseException):
                raise SubscriptionClosedError(f"log subscription of monitor {self.monitor.name} failed: {item!r}") from item
            await self._handle_notification(http, item, stop)

    async def _handle_notification(self, http: AsyncWeb3[Any], raw: Mapping[str, Any], stop: asyncio.Event) -> None:
        log = ChainLog.from_rpc(raw)
        if log.removed:
            await self._apply(log, stop)
        elif log.position > self._position():
            # A notification only signals new logs. The monitor reads the logs from its
            # cursor in chain order, so a later log delivered first cannot move the cursor
            # past an earlier one. A log that is not deep enough waits for a later catch-up.
            await self._catch_up(http, stop)

    async def _catch_up(self, http: AsyncWeb3[Any], stop: asyncio.Event) -> None:
        """Apply every log from the cursor to the head minus the confirmations, chunk by chunk."""
        latest = await http.eth.get_block("latest")
        head, head_hash = latest["number"], "0x" + bytes(latest["hash"]).hex()
        self.health.head_block = head
        if head_hash != self.last_head_hash:
            # A new head may sit on a reorganized chain, including one with the same height.
            await check_reorg(self.monitor, http, head)
            self.last_head_hash = head_hash
        last = head - self.monitor.config.confirmations
        first = self.health.cursor_block
        assert first is not None, "read_position runs before the first catch-up"
        if head < first - 1 and not self.warned_head_behind:
            logger.warning("monitor %s finished block %d but the head is block %d: the chain was reverted or replaced", self.monitor.name, first - 1, head)
            self.warned_head_behind = True
        chunk = max(1, self.monitor.config.log_chunk_blocks)
        # Read the hash of the last block before its logs, so a reorg in between leaves a
        # stale hash that the next check catches, never a new hash over old logs.
        last_hash = head_hash if last == head or last < first else "0x" + bytes((await http.eth.get_block(last))["hash"]).hex()

        for chunk_first in range(first, last + 1, chunk):
            chunk_last = min(chunk_first + chunk - 1, last)
            logs = await http.eth.get_logs({**self._log_filter(), "fromBlock": chunk_first, "toBlock": chunk_last})
            logger.debug("monitor %s fetched %d logs in blocks %d..%d", self.monitor.name, len(logs), chunk_first, chunk_last)
            for log in sorted((ChainLog.from_rpc(raw) for raw in logs), key=lambda item: item.position):
                if log.position > self._position():
                    await self._apply(log, stop)
            await asyncio.to_thread(self.monitor.mark_scanned, chunk_last)
        if last >= first:
            remember_scanned(self.monitor, last, last_hash)

    def _position(self) -> tuple[int, int]:
        """Return the cursor as this monitor last read or wrote it."""
        assert self.health.cursor_block is not None and self.health.cursor_log_index is not None, "read_position runs first"
        return (self.health.cursor_block, self.health.cursor_log_index)

    async def _apply(self, log: ChainLog, stop: asyncio.Event) -> None:
        """Apply one log, waiting while it depends on another monitor's progress."""
        state = self.health.state
        waiting_since: float | None = None
        warned = False
        while True:
            if stop.is_set():
                raise MonitorStopped
            try:
                await asyncio.to_thread(self.monitor.apply_log, log)
            except DependencyNotReadyError as err:
                waiting_since = waiting_since or time.monotonic()
                warned = self._log_wait(err, log, time.monotonic() - waiting_since, warned)
                await sleep_unless_stopped(stop, self.monitor.poll_interval)
                continue
            self.health.state = state
            return

    def _log_wait(self, err: DependencyNotReadyError, log: ChainLog, waited: float, warned: bool) -> bool:
        self.health.state = MonitorState.WAITING
        if waited >= WAIT_WARNING_SECONDS and not warned:
            logger.warning("monitor %s has waited %.0f s to apply log %s:%s: %s", self.monitor.name, waited, log.tx_hash, log.log_index, err)
            return True
        logger.debug("monitor %s waits to apply log %s:%s: %s", self.monitor.name, log.tx_hash, log.log_index, err)
        return warned
