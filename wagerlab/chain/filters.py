"""Polling filters: `eth_newFilter`, `eth_newBlockFilter`, `eth_newPendingTransactionFilter`
and `eth_getFilterChanges`.

The registry is a block listener of the node, so it runs under the node's lock. Each
filter collects what arrived since its last poll. A filter not polled for
`FILTER_TIMEOUT` seconds (five minutes, geth's default too) is uninstalled, which bounds
the memory it holds.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final

from wagerlab.chain import rpc
from wagerlab.chain.errors import FilterNotFound

logger = logging.getLogger(__name__)

FILTER_TIMEOUT: Final = 300.0


class FilterKind(Enum):
    LOGS = "logs"
    BLOCKS = "blocks"
    PENDING = "pending"


@dataclass
class Filter:
    kind: FilterKind
    criteria: dict[str, Any] | None = None
    log_filter: rpc.LogFilter | None = None
    changes: list[Any] = field(default_factory=list)
    last_poll: float = field(default_factory=time.monotonic)


class FilterRegistry:
    """The installed filters by id, and the changes each has not returned yet."""

    def __init__(self) -> None:
        self._filters: dict[str, Filter] = {}

    # -- installing and polling -------------------------------------------------------

    def new_log_filter(self, criteria: dict[str, Any], log_filter: rpc.LogFilter) -> str:
        return self._install(Filter(FilterKind.LOGS, criteria=criteria, log_filter=log_filter))

    def new_block_filter(self) -> str:
        return self._install(Filter(FilterKind.BLOCKS))

    def new_pending_filter(self) -> str:
        return self._install(Filter(FilterKind.PENDING))

    def changes(self, filter_id: Any) -> list[Any]:
        """Return and forget what the filter collected since its last poll."""
        installed = self._get(filter_id)
        installed.last_poll = time.monotonic()
        changes, installed.changes = installed.changes, []
        return changes

    def log_criteria(self, filter_id: Any) -> dict[str, Any]:
        installed = self._get(filter_id)
        if installed.criteria is None:
            raise FilterNotFound(
                f"filter not found: {filter_id} is a {installed.kind.value} filter, not a log filter"
            )
        installed.last_poll = time.monotonic()
        return installed.criteria

    def uninstall(self, filter_id: Any) -> bool:
        return self._filters.pop(filter_id, None) is not None if isinstance(filter_id, str) else False

    def clear(self) -> int:
        count = len(self._filters)
        self._filters.clear()
        return count

    # -- block listener ---------------------------------------------------------------

    def wants_blocks(self) -> bool:
        return any(f.kind is not FilterKind.PENDING for f in self._filters.values())

    def wants_logs(self) -> bool:
        return any(f.kind is FilterKind.LOGS for f in self._filters.values())

    def wants_pending(self) -> bool:
        return any(f.kind is FilterKind.PENDING for f in self._filters.values())

    def on_block(self, event: Any) -> None:
        self._expire()
        for installed in self._filters.values():
            if installed.kind is FilterKind.BLOCKS:
                installed.changes.append(event.header["hash"])
            elif installed.kind is FilterKind.LOGS:
                self._add_logs(installed, event.logs)

    def on_removed_logs(self, logs: tuple[Any, ...]) -> None:
        for installed in self._filters.values():
            if installed.kind is FilterKind.LOGS:
                self._add_logs(installed, logs)

    def on_pending_transaction(self, tx_hash: bytes) -> None:
        for installed in self._filters.values():
            if installed.kind is FilterKind.PENDING:
                installed.changes.append(rpc.data(tx_hash))

    # -- helpers ----------------------------------------------------------------------

    def _install(self, installed: Filter) -> str:
        self._expire()
        filter_id = "0x" + secrets.token_hex(16)
        self._filters[filter_id] = installed
        logger.info("installed %s filter %s", installed.kind.value, filter_id)
        return filter_id

    def _get(self, filter_id: Any) -> Filter:
        installed = self._filters.get(filter_id) if isinstance(filter_id, str) else None
        if installed is None:
            raise FilterNotFound(
                f"filter not found: {filter_id!r} was never installed, was uninstalled, or "
                f"expired after {FILTER_TIMEOUT:.0f} s without a poll; install a new filter"
            )
        return installed

    def _add_logs(self, installed: Filter, logs: tuple[Any, ...]) -> None:
        assert installed.log_filter is not None
        for entry in logs:
            if installed.log_filter.matches(entry.address, entry.topics):
                installed.changes.append(entry.wire)

    def _expire(self) -> None:
        cutoff = time.monotonic() - FILTER_TIMEOUT
        for filter_id in [i for i, f in self._filters.items() if f.last_poll < cutoff]:
            del self._filters[filter_id]
            logger.info("filter %s expired after %.0f s without a poll", filter_id, FILTER_TIMEOUT)
