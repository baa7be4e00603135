"""The health record each monitor keeps, served as JSON by the supervisor."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Any


class MonitorState(str, enum.Enum):
    STARTING = "starting"
    CONNECTING = "connecting"
    BACKFILLING = "backfilling"
    LIVE = "live"
    WAITING = "waiting"
    """Holding an event until another monitor has written what it depends on."""
    BACKOFF = "backoff"
    """Sleeping after an error before it reconnects."""
    STOPPED = "stopped"


HEALTHY_STATES = frozenset({MonitorState.LIVE, MonitorState.WAITING, MonitorState.BACKFILLING})


@dataclass
class MonitorHealth:
    """Counters and the latest position of one monitor; only its own task writes them."""

    name: str
    state: MonitorState = MonitorState.STARTING
    cursor_block: int | None = None
    cursor_log_index: int | None = None
    head_block: int | None = None
    events_applied: int = 0
    events_reversed: int = 0
    duplicates: int = 0
    skipped: int = 0
    last_event_time: float | None = None
    """Unix time in seconds when the monitor last applied or reversed an event."""
    restarts: int = 0
    last_error: str | None = None
    last_error_time: float | None = None
    unhealthy_since: float | None = None
    """Unix time in seconds since which the supervisor has seen the monitor unhealthy; None while healthy."""

    @property
    def lag_blocks(self) -> int | None:
        """How many blocks the head is ahead of the last block the monitor finished."""
        if self.head_block is None or self.cursor_block is None:
            return None
        finished = self.cursor_block if self.cursor_log_index != -1 else self.cursor_block - 1
        return max(0, self.head_block - finished)

    def record_error(self, err: BaseException) -> None:
        self.last_error = f"{type(err).__name__}: {err}"
        self.last_error_time = time.time()

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "cursor_block": self.cursor_block,
            "cursor_log_index": self.cursor_log_index,
            "head_block": self.head_block,
            "lag_blocks": self.lag_blocks,
            "events_applied": self.events_applied,
            "events_reversed": self.events_reversed,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "last_event_time": self.last_event_time,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "last_error_time": self.last_error_time,
            "unhealthy_since": self.unhealthy_since,
        }
