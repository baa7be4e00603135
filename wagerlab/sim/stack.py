"""Start and stop the processes of one run: chain node, api, chainapi and monitors."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 15.0


class StackError(Exception):
    """A process of the stack failed to start or died."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free a moment ago on `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class ManagedProcess:
    """One `python -m wagerlab ...` child process with its output in a log file."""

    def __init__(self, name: str, args: list[str], log_path: Path):
        self.name = name
        self.args = args
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        """Held while the process is killed and started again, so `ensure_running` waits."""

    def start(self) -> None:
        argv = [sys.executable, "-m", "wagerlab", *self.args]
        logger.info("starting %s: %s", self.name, " ".join(self.args))
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"}
            )

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def exit_code(self) -> int | None:
        return self._process.poll() if self._process else None

    def log_tail(self, lines: int = 25) -> str:
        try:
            with open(self.log_path, errors="replace") as log:
                return "".join(deque(log, maxlen=lines))
        except FileNotFoundError:
            return "(no log)"

    def kill_and_start(self) -> int:
        """Kill the process with SIGKILL and start it again with the same arguments; return the old pid."""
        with self.stopped() as old_pid:
            pass
        return old_pid

    @contextlib.contextmanager
    def stopped(self) -> Iterator[int]:
        """Kill the process with SIGKILL, yield its pid, and start it again on exit; `ensure_running` waits meanwhile."""
        with self._lock:
            if self._process is None:
                raise StackError(f"{self.name} was never started, so it cannot be restarted")
            old_pid = self._process.pid
            self._process.kill()
            self._process.wait()
            logger.warning("killed %s (pid %d) with SIGKILL", self.name, old_pid)
            try:
                yield old_pid
            finally:
                logger.warning("starting %s again", self.name)
                self.start()

    def restart_if_exited(self) -> tuple[int, int] | None:
        """Start the process again if it has exited; return its old pid and exit code, or None while it runs."""
        with self._lock:
            code = self.exit_code()
            if self._process is None or code is None:
                return None
            old_pid = self._process.pid
            self.start()
        return old_pid, code

    def ensure_running(self) -> None:
        with self._lock:
            code = self.exit_code()
        if code is not None:
            raise StackError(f"{self.name} exited with code {code}; last lines of {self.log_path}:\n{self.log_tail()}")

    def wait_for_port(self, host: str, port: int, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while not _port_open(host, port):
            self.ensure_running()
            if time.monotonic() > deadline:
                raise StackError(f"{self.name} did not listen on {host}:{port} within {timeout} s; see {self.log_path}")
            time.sleep(0.1)

    def wait_for_file(self, path: Path, timeout: float = READY_TIMEOUT_SECONDS) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while True:
            if path.exists():
                try:
                    return json.loads(path.read_text())
                except json.JSONDecodeError:
                    pass  # the writer has not finished the file yet
            self.ensure_running()
            if time.monotonic() > deadline:
                raise StackError(f"{self.name} did not write {path} within {timeout} s; see {self.log_path}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        logger.info("stopping %s (pid %d)", self.name, self._process.pid)
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop within %s s after SIGTERM; killing it", self.name, STOP_TIMEOUT_SECONDS)
            self._process.kill()
            self._process.wait()


class Stack:
    """The processes of one run, stopped in reverse start order."""

    def __init__(self, run_dir: Path, host: str = "127.0.0.1"):
        self.run_dir = run_dir
        self.host = host
        self.log_dir = run_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes: list[ManagedProcess] = []

    def start_node(self) -> tuple[str, str]:
        """Start `wagerlab chain` on a free port; return its HTTP and WebSocket URLs."""
        ready_file = self.run_dir / "node-ready.json"
        ready_file.unlink(missing_ok=True)
        port = free_port(self.host)
        node = self._spawn(
            "node", ["chain", "--host", self.host, "--port", str(port), "--ready-file", str(ready_file)]
        )
        urls = node.wait_for_file(ready_file)
        return urls["http"], urls["ws"]

    def start_services(self, config_path: Path, ports: dict[str, int]) -> None:
        """Start each `wagerlab serve SERVICE` at once, then wait until every one listens."""
        started = [(self._spawn(service, ["serve", service, "--config", str(config_path)]), port) for service, port in ports.items()]
        for process, port in started:
            process.wait_for_port(self.host, port)

    def spawn(self, name: str, args: list[str]) -> ManagedProcess:
        """Start `python -m wagerlab ARGS` as a process of this stack, logging to logs/NAME.log."""
        return self._spawn(name, args)

    def ensure_running(self) -> None:
        for process in self.processes:
            process.ensure_running()

    def kill_and_restart(self, name: str, port: int | None = None) -> int:
        """Kill one process with SIGKILL, start it again and wait until it listens on `port`; return the old pid."""
        process = self._named(name)
        old_pid = process.kill_and_start()
        if port is not None:
            process.wait_for_port(self.host, port)
        return old_pid

    def _named(self, name: str) -> ManagedProcess:
        matches = [process for process in self.processes if process.name == name]
        if not matches:
            raise StackError(f"no process named {name!r} in this stack; expected one of {[p.name for p in self.processes]}")
        return matches[0]

    @contextlib.contextmanager
    def stopped(self, name: str, port: int) -> Iterator[int]:
        """Kill one process with SIGKILL and yield its pid; on exit start it again and wait until it listens on `port`."""
        process = self._named(name)
        with process.stopped() as old_pid:
            yield old_pid
        process.wait_for_port(self.host, port)

    def stop(self) -> None:
        for process in reversed(self.processes):
            try:
                process.stop()
            except OSError:
                logger.exception("stopping %s failed", process.name)

    def _spawn(self, name: str, args: list[str]) -> ManagedProcess:
        process = ManagedProcess(name, args, self.log_dir / f"{name}.log")
        process.start()
        self.processes.append(process)
        return process

