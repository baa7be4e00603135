"""A simulated Redis outage, injected at the client so both backends see connection errors.

With the embedded fakeredis the client's `FakeServer` is marked disconnected, and every
command raises `redis.exceptions.ConnectionError`. With a real Redis the shared server keeps
running: the client's connection pool is pointed at a closed local port and its
connections are closed and forgotten, so every command and every new subscription fails
to connect.
Either way the server keeps its keys, as a Redis behind a broken network would.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

logger = logging.getLogger(__name__)

MAX_OUTAGE_SECONDS = 300


class CacheOutage:
    """Makes one Redis client's server unreachable for a number of seconds, then reachable again."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.until = 0.0
        self.count = 0
        self.active = False
        self._saved_port: int | None = None
        self._end_handle: asyncio.TimerHandle | None = None

    @property
    def backend(self) -> str:
        return "fakeredis" if self._fake_server() is not None else "redis"

    async def start(self, seconds: float) -> None:
        """Cut the connection for `seconds`; a second call while one is active extends it."""
        if not 0 < seconds <= MAX_OUTAGE_SECONDS:
            raise ValueError(f"outage seconds must be from 0 (exclusive) to {MAX_OUTAGE_SECONDS}, got {seconds!r}")
        if not self.active:
            await self._disconnect()
        self.count += 1
        self.until = max(self.until, time.monotonic() + seconds)
        if self._end_handle is not None:
            self._end_handle.cancel()
        self._end_handle = asyncio.get_running_loop().call_at(
            asyncio.get_running_loop().time() + (self.until - time.monotonic()), self._reconnect
        )
        logger.warning("cache: simulated Redis outage %d started for %s s (%s)", self.count, seconds, self.backend)

    def _fake_server(self) -> Any:
        return self.client.connection_pool.connection_kwargs.get("server")

    async def _disconnect(self) -> None:
        self.active = True
        server = self._fake_server()
        if server is not None:
            server.connected = False
            return
        kwargs = self.client.connection_pool.connection_kwargs
        self._saved_port = kwargs["port"]
        kwargs["port"] = _closed_port(kwargs.get("host", "127.0.0.1"))
        await self.client.connection_pool.disconnect()
        # A pooled connection reconnects to the port it was made with, so the pool drops them all.
        self.client.connection_pool.reset()

    def _reconnect(self) -> None:
        server = self._fake_server()
        if server is not None:
            server.connected = True
        elif self._saved_port is not None:
            self.client.connection_pool.connection_kwargs["port"] = self._saved_port
            self.client.connection_pool.reset()
            self._saved_port = None
        self._end_handle = None
        self.active = False
        logger.warning("cache: simulated Redis outage %d ended; Redis is reachable again", self.count)


def _closed_port(host: str) -> int:
    """Return a port on `host` that nothing listens on a moment later, so connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
