"""Helpers of the chain node's tests: a node served by uvicorn on a free loopback port."""

from __future__ import annotations

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

    def rpc(self, method: str, params: list[Any] | None = None) -> dict[str, Any]:
        """Send one raw JSON-RPC request over HTTP and return the whole response object."""
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
        response = httpx.post(self.http_url, json=body, timeout=10)
        response.raise_for_status()
        return response.json()


class _ServerThread:
    """uvicorn in a background thread; uvicorn skips signal handlers off the main thread."""

    def __init__(self, node: Node, send_queue_limit: int) -> None:
        app = build_app(node, send_queue_limit=send_queue_limit)
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="chain-node-test", daemon=True)

    def start(self) -> int:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test chain node did not start within 10 s")
            time.sleep(0.01)
        return self.server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_node(send_queue_limit: int = SEND_QUEUE_LIMIT) -> tuple[RunningNode, _ServerThread]:
    node = Node()
    thread = _ServerThread(node, send_queue_limit)
    port = thread.start()
    return RunningNode(node, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"), thread
