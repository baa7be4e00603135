"""Monitor cursors: the position of the last log a monitor finished, kept in `monitor_cursors`.

A position is `(block_number, log_index)`. `(B, -1)` means every log before block B is
done and none of block B, so a monitor that scanned through block B without finding a log
stores `(B + 1, -1)`.
"""

from __future__ import annotations

from sqlmodel import Session

from wagerlab.platform.db import MonitorCursor, now_ms

Position = tuple[int, int]


def start_position(start_block: int) -> Position:
    """Return the position of a monitor that has read nothing since `start_block`."""
    return (start_block, -1)


def read_position(session: Session, monitor: str, default: Position) -> Position:
    row = session.get(MonitorCursor, monitor)
    if row is None:
        return default
    return (row.block_number, row.log_index)


def write_position(session: Session, monitor: str, position: Position) -> None:
    """Store a monitor's position, moving it forward or back as given."""
    row = session.get(MonitorCursor, monitor)
    if row is None:
        row = MonitorCursor(monitor=monitor, block_number=position[0], log_index=position[1])
    else:
        row.block_number, row.log_index = position
        row.updated_at = now_ms()
    session.add(row)


def scanned_through(block_number: int) -> Position:
    """Return the position after every log of `block_number` and before block + 1."""
    return (block_number + 1, -1)


def has_passed(position: Position, block_number: int) -> bool:
    """Tell whether a monitor at `position` has finished every log of `block_number`."""
    return position >= scanned_through(block_number)
