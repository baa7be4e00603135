"""Fan-out of odds changes and bet status to WebSocket subscribers, each with its own queue.

Publishing never waits for a client: a message goes into each subscriber's bounded queue,
and a subscriber whose queue is full, or whose send does not finish within
`SEND_TIMEOUT_SECONDS`, is dropped. One sender task per subscriber drains its queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

QUEUE_SIZE = 256
"""Messages a subscriber may fall behind by before it is dropped."""
SEND_TIMEOUT_SECONDS = 5.0

SendText = Callable[[str], Awaitable[None]]
Close = Callable[[int, str], Awaitable[None]]


class DropReason(str, enum.Enum):
    SLOW = "slow"
    SEND_FAILED = "send_failed"
    SEND_TIMED_OUT = "send_timed_out"


CLOSE_CODE_SLOW = 4008
"""WebSocket close code (private-use range) sent to a subscriber dropped for falling behind."""


@dataclass(eq=False)
class Subscriber:
    """One WebSocket client: the markets it follows, its bettor address once authenticated."""

    client_id: int
    send_text: SendText
    close: Close
    markets: set[int] = field(default_factory=set)
    bettor: str | None = None
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    sender: asyncio.Task[None] | None = None
    dropped: bool = False


@dataclass
class HubStats:
    subscribers: int = 0
    connected_total: int = 0
    messages_queued: int = 0
    messages_sent: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: {reason.value: 0 for reason in DropReason})

    def to_json(self) -> dict[str, Any]:
        return {
            "subscribers": self.subscribers,
            "connected_total": self.connected_total,
            "messages_queued": self.messages_queued,
            "messages_sent": self.messages_sent,
            "dropped": dict(self.dropped),
        }


class StreamHub:
    """The connected subscribers, and delivery to those that follow a market or a bettor."""

    def __init__(self) -> None:
        self._subscribers: dict[int, Subscriber] = {}
        self._next_id = 1
        self.stats = HubStats()

    def connect(self, send_text: SendText, close: Close) -> Subscriber:
        """Register a client and start its sender task."""
        subscriber = Subscriber(self._next_id, send_text, close)
        self._next_id += 1
        subscriber.sender = asyncio.create_task(self._send_loop(subscriber), name=f"stream-sender-{subscriber.client_id}")
        self._subscribers[subscriber.client_id] = subscriber
        self.stats.subscribers = len(self._subscribers)
        self.stats.connected_total += 1
        return subscriber

    async def disconnect(self, subscriber: Subscriber) -> None:
        """Forget a client and stop its sender task."""
        self._subscribers.pop(subscriber.client_id, None)
        self.stats.subscribers = len(self._subscribers)
        if subscriber.sender is not None and subscriber.sender is not asyncio.current_task():
            subscriber.sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await subscriber.sender

    def bettors(self) -> set[str]:
        return {subscriber.bettor for subscriber in self._subscribers.values() if subscriber.bettor}

    def publish_market(self, market_id: int, message: dict[str, Any]) -> int:
        """Queue a message for every subscriber of `market_id`; return how many got it."""
        return self._publish(message, lambda subscriber: market_id in subscriber.markets)

    def publish_bettor(self, bettor: str, message: dict[str, Any]) -> int:
        """Queue a message for every connection authenticated as `bettor`."""
        return self._publish(message, lambda subscriber: subscriber.bettor == bettor)

    def send_to(self, subscriber: Subscriber, message: dict[str, Any]) -> None:
        self._enqueue(subscriber, json.dumps(message))

    def _publish(self, message: dict[str, Any], wants: Callable[[Subscriber], bool]) -> int:
        text = json.dumps(message)
        targets = [subscriber for subscriber in self._subscribers.values() if wants(subscriber)]
        for subscriber in targets:
            self._enqueue(subscriber, text)
        return len(targets)

    def _enqueue(self, subscriber: Subscriber, text: str) -> None:
        if subscriber.dropped:
            return
        try:
            subscriber.queue.put_nowait(text)
            self.stats.messages_queued += 1
        except asyncio.QueueFull:
            self._drop(subscriber, DropReason.SLOW)

    def _drop(self, subscriber: Subscriber, reason: DropReason) -> None:
        if subscriber.dropped:
            return
        subscriber.dropped = True
        self.stats.dropped[reason.value] += 1
        self._subscribers.pop(subscriber.client_id, None)
        self.stats.subscribers = len(self._subscribers)
        logger.warning("stream: dropped client %s (%s, %d messages queued)", subscriber.client_id, reason.value, subscriber.queue.qsize())
        asyncio.create_task(self._close_dropped(subscriber), name=f"stream-drop-{subscriber.client_id}")

    async def _close_dropped(self, subscriber: Subscriber) -> None:
        if subscriber.sender is not None:
            subscriber.sender.cancel()
        try:
            await asyncio.wait_for(subscriber.close(CLOSE_CODE_SLOW, "dropped: the client did not keep up"), SEND_TIMEOUT_SECONDS)
        except (TimeoutError, OSError, RuntimeError) as err:
            logger.info("stream: closing dropped client %s failed: %s", subscriber.client_id, err)

    async def _send_loop(self, subscriber: Subscriber) -> None:
        while True:
            text = await subscriber.queue.get()
            try:
                async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                    await subscriber.send_text(text)
            except TimeoutError:
                self._drop(subscriber, DropReason.SEND_TIMED_OUT)
                return
            except (OSError, RuntimeError) as err:
                # Starlette raises RuntimeError (and the server OSError or its own
                # disconnect errors) once the peer has gone.
                logger.info("stream: send to client %s failed: %s", subscriber.client_id, err)
                self._drop(subscriber, DropReason.SEND_FAILED)
                return
            self.stats.messages_sent += 1
