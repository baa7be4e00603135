"""The forensic log: one JSON line per request, hash-chained, append-only, with secrets redacted.

Each entry contains `seq`, `prev` (the previous entry's hash) and `hash`, the SHA-256 of the
entry's canonical JSON without `hash`. Editing, removing or reordering a line breaks the
chain at that line, which `verify_chain` reports. The gateway only ever opens the file to
append.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
REDACTED = "[redacted]"
SECRET_FIELDS = frozenset({"password", "new_password", "old_password", "admin_token", "private_key", "secret"})
"""Fields replaced by `[redacted]` outright."""
FINGERPRINT_FIELDS = frozenset({"token", "signature", "authorization"})
"""Fields replaced by a SHA-256 fingerprint, so that a replayed token or signature can be matched
across entries without the log containing the value itself."""


class ForensicLogError(Exception):
    """The forensic log file is unreadable or its hash chain is broken."""


def fingerprint(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:16]


def redact(value: Any) -> Any:
    """Return a copy of a JSON value with secret fields redacted at any depth."""
    if isinstance(value, dict):
        return {key: _redact_field(key, item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def _redact_field(key: Any, value: Any) -> Any:
    name = str(key).lower()
    if name in SECRET_FIELDS:
        return REDACTED
    if name in FINGERPRINT_FIELDS and isinstance(value, str):
        return fingerprint(value)
    return redact(value)


def _entry_hash(entry: dict[str, Any]) -> str:
    canonical = json.dumps({key: value for key, value in entry.items() if key != "hash"}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ForensicQuery:
    """Filters of `ForensicLog.query`; None matches everything. Times are Unix seconds."""

    ip: str | None = None
    account: str | None = None
    since: float | None = None
    until: float | None = None

    def matches(self, entry: dict[str, Any]) -> bool:
        if self.ip is not None and entry.get("ip") != self.ip:
            return False
        if self.account is not None and entry.get("account") != self.account:
            return False
        if self.since is not None and entry["at"] < self.since:
            return False
        return self.until is None or entry["at"] <= self.until


class ForensicLog:
    """Appends entries to a JSONL file, continuing the hash chain the file already has."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._set_aside_torn_tail()
        self._seq, self._prev = self._tail()

    def _set_aside_torn_tail(self) -> None:
        """Move a last line without its newline, left by a process killed mid-write, to a sidecar file.

        Every complete entry ends with a newline, so bytes after the last newline are a write
        that never finished. They move to `PATH.torn` (appended, so earlier torn tails stay)
        and the log is cut back to its last complete entry, which the chain continues from.
        A broken line before the last newline is still an alteration that `read_entries` reports.
        """
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        if not data or data.endswith(b"\n"):
            return
        keep = data.rfind(b"\n") + 1
        torn = self.path.with_name(self.path.name + ".torn")
        with torn.open("ab") as sidecar:
            sidecar.write(data[keep:] + b"\n")
        with self.path.open("r+b") as log:
            log.truncate(keep)
        logger.warning(
            "forensic log %s ended in an unfinished entry of %d bytes (a process stopped mid-write); moved it to %s",
            self.path, len(data) - keep, torn,
        )  # fmt: skip

    def _tail(self) -> tuple[int, str]:
        last: dict[str, Any] | None = None
        for last in read_entries(self.path):
            pass
        if last is None:
            return 0, GENESIS_HASH
        return int(last["seq"]), str(last["hash"])

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Redact and append one request record; return the stored entry."""
        with self._lock:
            entry = {"seq": self._seq + 1, "at": record.get("at", time.time()), **redact(record), "prev": self._prev}
            entry["hash"] = _entry_hash(entry)
            with self.path.open("a", encoding="utf-8") as log:
                log.write(json.dumps(entry, separators=(",", ":")) + "\n")
            self._seq, self._prev = entry["seq"], entry["hash"]
        return entry

    def query(self, query: ForensicQuery) -> list[dict[str, Any]]:
        return [entry for entry in read_entries(self.path) if query.matches(entry)]


def read_entries(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the entries of a forensic log file in order; a missing file has none."""
    try:
        log = path.open(encoding="utf-8")
    except FileNotFoundError:
        return
    with log:
        for number, line in enumerate(log, start=1):
            try:
                yield json.loads(line)
            except json.JSONDecodeError as err:
                raise ForensicLogError(f"{path}: line {number} is not JSON ({err}); the log was altered") from err


def verify_chain(path: Path) -> int:
    """Check every entry's hash and link; return the number of entries, raise on the first break."""
    prev = GENESIS_HASH
    count = 0
    for count, entry in enumerate(read_entries(path), start=1):
        if entry.get("prev") != prev or entry.get("seq") != count:
            raise ForensicLogError(f"{path}: entry {count} does not follow entry {count - 1}; entries were removed or reordered")
        if entry.get("hash") != _entry_hash(entry):
            raise ForensicLogError(f"{path}: entry {count} does not match its hash; it was edited")
        prev = entry["hash"]
    return count
