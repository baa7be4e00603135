"""The output directory of one run or `up`: recognised by a marker file and locked while in use.

A run empties its directory of the previous run's files before it starts. To never delete
a user's own files, it only does so in a directory that is new, empty, or marked as a
wagerlab run directory by an earlier run.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path
from typing import IO

MARKER = ".wagerlab-run"
RUN_FILES = (
    "platform.db",
    "platform.db-wal",
    "platform.db-shm",
    "report.json",
    "report.html",
    "trace.json",
    "platform.json",
    "node-ready.json",
    "forensics.jsonl",
)
RUN_FOLDERS = ("logs",)


class RunDirError(Exception):
    """The output directory cannot be used: not a directory, not writable, foreign or busy."""


class RunDir:
    """Holds the lock on a run directory for as long as the run lasts."""

    def __init__(self, path: Path, lock_file: IO[str]):
        self.path = path
        self._lock_file = lock_file

    def release(self) -> None:
        fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()


def _written_by_a_run(path: Path) -> bool:
    # Before the marker existed, `run` left platform.json and logs/runner.log behind, and `up` platform.json and api-1.json.
    if (path / MARKER).exists():
        return True
    return (path / "platform.json").exists() and ((path / "logs" / "runner.log").exists() or (path / "api-1.json").exists())


def _holder(lock_file: IO[str]) -> str:
    """Return "pid N" from the marker the holder of the lock wrote, or "another process" if it wrote none."""
    lock_file.seek(0)
    text = lock_file.read().strip()
    return f"pid {text}" if text.isdigit() else "another process"


def claim_run_dir(path: Path) -> RunDir:
    """Create or reuse `path` for a run, lock it, and remove the previous run's files."""
    if path.exists() and not path.is_dir():
        raise RunDirError(f"--out {path} is an existing file; name a directory")
    if path.is_dir() and any(path.iterdir()) and not _written_by_a_run(path):
        raise RunDirError(
            f"--out {path} is not empty and was not written by wagerlab run or up; name a new or empty directory"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        lock_file = open(path / MARKER, "a+")  # noqa: SIM115 - kept open to hold the lock
    except OSError as err:
        raise RunDirError(f"--out {path} cannot be written: {err.strerror}") from err
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as err:
        holder = _holder(lock_file)
        lock_file.close()
        raise RunDirError(f"--out {path} is in use by another wagerlab run ({holder}); wait for it to stop or pass another --out") from err

    for name in RUN_FILES:
        (path / name).unlink(missing_ok=True)
    for name in RUN_FOLDERS:
        shutil.rmtree(path / name, ignore_errors=True)
    # The pid lets a second run name the process that has the lock.
    lock_file.seek(0)
    lock_file.truncate()
    lock_file.write(f"{os.getpid()}\n")
    lock_file.flush()
    return RunDir(path, lock_file)
