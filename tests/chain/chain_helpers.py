"""Helpers of the chain node's tests: a node served by uvicorn on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from wagerlab.chain.node import Node
from wagerlab.chain.server import SEND_QUEUE_LIMIT, build_app


@dataclass
class RunningNode:
    node: Node
    http_url: str
    ws_url: str
    throttled_ws_url: str | None = None

    def rpc(self, method: str, params: list[Any] | None = None) -> dict[str, Any]:
        """Send one raw JSON-RPC request over HTTP and return the whole response object."""
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
        response = httpx.post(self.http_url, json=body, timeout=10)
        response.raise_for_status()
        return response.json()


class _ServerThread:
    """uvicorn in a background thread; uvicorn skips signal handlers off the main thread.

    With `throttled_send_buffer` the app also listens on a second socket whose kernel send
    buffer is that small (accepted connections inherit it on Linux), so a test can fill a
    client's pipe with few messages.
    """

    def __init__(self, node: Node, send_queue_limit: int, throttled_send_buffer: int | None) -> None:
        app = build_app(node, send_queue_limit=send_queue_limit)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.listeners = [_listen(None)]
        if throttled_send_buffer is not None:
            self.listeners.append(_listen(throttled_send_buffer))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": self.listeners}, name="chain-node-test", daemon=True
        )

    def start(self) -> list[int]:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test chain node did not start within 10 s")
            time.sleep(0.01)
        return [listener.getsockname()[1] for listener in self.listeners]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        for listener in self.listeners:
            listener.close()


def _listen(send_buffer: int | None) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Without TCP_NODELAY (which uvicorn sets only on sockets it binds itself), Nagle's
    # algorithm and delayed ACKs add about 40 ms to every request.
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if send_buffer is not None:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    listener.bind(("127.0.0.1", 0))
    return listener


def start_node(
    send_queue_limit: int = SEND_QUEUE_LIMIT, throttled_send_buffer: int | None = None
) -> tuple[RunningNode, _ServerThread]:
    node = Node()
    thread = _ServerThread(node, send_queue_limit, throttled_send_buffer)
    ports = thread.start()
    throttled_url = f"ws://127.0.0.1:{ports[1]}" if len(ports) > 1 else None
    running = RunningNode(node, f"http://127.0.0.1:{ports[0]}", f"ws://127.0.0.1:{ports[0]}", throttled_url)
    return running, thread
