"""WebSocket subscriptions: newHeads, filtered logs, unsubscribe, and slow subscribers."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import threading
from typing import Any, Iterator
from urllib.parse import urlparse

import httpx
import pytest
from chain_helpers import RunningNode, start_node
from eth_utils import keccak
from web3 import AsyncWeb3, Web3, WebSocketProvider
from web3.contract import Contract
from websockets.sync.client import ClientConnection, connect

STORED = keccak(text="Stored(uint256,address,uint256)")


async def collect(w3: AsyncWeb3, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    """Read `count` subscription messages, failing after `timeout` seconds."""

    async def read() -> list[dict[str, Any]]:
        messages = []
        async for message in w3.socket.process_subscriptions():
            messages.append(message)
            if len(messages) == count:
                break
        return messages

    return await asyncio.wait_for(read(), timeout)


def test_new_heads(running: RunningNode, w3: Web3) -> None:
    async def scenario() -> tuple[str, list[dict[str, Any]], int]:
        async with AsyncWeb3(WebSocketProvider(running.ws_url)) as aw3:
            subscription = await aw3.eth.subscribe("newHeads")
            first = w3.eth.block_number + 1
            for _ in range(3):
                await asyncio.to_thread(w3.eth.send_transaction, {"to": w3.eth.accounts[9], "value": 1})
            return subscription, await collect(aw3, 3), first

    subscription, messages, first = asyncio.run(scenario())

    assert [m["subscription"] for m in messages] == [subscription] * 3
    heads = [m["result"] for m in messages]
    assert [head["number"] for head in heads] == [first, first + 1, first + 2]
    assert heads[1]["parentHash"] == heads[0]["hash"]
    assert heads[2]["hash"] == w3.eth.get_block(first + 2)["hash"]
    assert "logsBloom" in heads[0] and "baseFeePerGas" in heads[0]


def test_logs_with_filter(running: RunningNode, w3: Web3, probe: Contract) -> None:
    async def scenario() -> list[dict[str, Any]]:
        async with AsyncWeb3(WebSocketProvider(running.ws_url)) as aw3:
            await aw3.eth.subscribe("logs", {"address": probe.address, "topics": ["0x" + STORED.hex()]})
            await asyncio.to_thread(probe.functions.ping(b"\x01" * 32).transact)
            await asyncio.to_thread(probe.functions.store(5, 55).transact)
            await asyncio.to_thread(probe.functions.ping(b"\x02" * 32).transact)
            await asyncio.to_thread(probe.functions.store(6, 66).transact)
            return await collect(aw3, 2)

    messages = asyncio.run(scenario())

    logs = [m["result"] for m in messages]
    assert [log["topics"][0] for log in logs] == [STORED, STORED]
    assert [int.from_bytes(log["topics"][1], "big") for log in logs] == [5, 6]
    assert all(log["address"] == probe.address for log in logs)
    assert logs[1]["blockNumber"] == logs[0]["blockNumber"] + 2
    assert logs[0]["removed"] is False
    receipt = w3.eth.get_transaction_receipt(logs[1]["transactionHash"])
    assert receipt["logs"][0]["data"] == logs[1]["data"]


def test_logs_topic_or_list_and_null(running: RunningNode, w3: Web3, probe: Contract) -> None:
    key_seven = "0x" + (7).to_bytes(32, "big").hex()
    key_eight = "0x" + (8).to_bytes(32, "big").hex()

    async def scenario() -> list[dict[str, Any]]:
        async with AsyncWeb3(WebSocketProvider(running.ws_url)) as aw3:
            await aw3.eth.subscribe("logs", {"topics": [None, [key_seven, key_eight]]})
            for key in (6, 7, 9, 8):
                await asyncio.to_thread(probe.functions.store(key, 1).transact)
            return await collect(aw3, 2)

    messages = asyncio.run(scenario())

    keys = [int.from_bytes(m["result"]["topics"][1], "big") for m in messages]
    assert keys == [7, 8]


def raw_subscribe(connection: ClientConnection, kind: str) -> str:
    connection.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": [kind]}))
    return json.loads(connection.recv(timeout=5))["result"]


def test_unsubscribe_stops_notifications(running: RunningNode) -> None:
    with connect(running.ws_url) as connection:
        subscription = raw_subscribe(connection, "newHeads")
        running.rpc("evm_mine")
        assert json.loads(connection.recv(timeout=5))["params"]["subscription"] == subscription

        connection.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "eth_unsubscribe", "params": [subscription]}))
        assert json.loads(connection.recv(timeout=5)) == {"jsonrpc": "2.0", "id": 2, "result": True}

        running.rpc("evm_mine")
        with pytest.raises(TimeoutError):
            connection.recv(timeout=0.5)
        connection.send(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "eth_unsubscribe", "params": [subscription]}))
        assert json.loads(connection.recv(timeout=5))["result"] is False


def test_web3_unsubscribe(running: RunningNode) -> None:
    async def scenario() -> bool:
        async with AsyncWeb3(WebSocketProvider(running.ws_url)) as aw3:
            subscription = await aw3.eth.subscribe("newHeads")
            return await aw3.eth.unsubscribe(subscription)

    assert asyncio.run(scenario()) is True


@pytest.fixture
def small_queue_node() -> Iterator[RunningNode]:
    running_node, thread = start_node(send_queue_limit=64, throttled_send_buffer=4096)
    yield running_node
    thread.stop()


class SlowClient:
    """A WebSocket client on a raw socket that subscribes to newHeads and then never reads."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((parsed.hostname, parsed.port))
        self.sock.settimeout(10)
        self._handshake(f"{parsed.hostname}:{parsed.port}")
        request = {"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}
        self.sock.sendall(masked_text_frame(json.dumps(request).encode()))

    def _handshake(self, host: str) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            response += self.sock.recv(1)
        assert response.startswith(b"HTTP/1.1 101"), response

    def read_until_closed(self) -> int:
        """Read everything the server sent until it closes the connection; return the byte count."""
        total = 0
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return total
            if not chunk:
                return total
            total += len(chunk)


def masked_text_frame(payload: bytes) -> bytes:
    assert len(payload) < 126
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


def test_slow_subscriber_does_not_block_fast_one(small_queue_node: RunningNode) -> None:
    blocks = 300
    assert small_queue_node.throttled_ws_url is not None
    slow = SlowClient(small_queue_node.throttled_ws_url)

    async def fast_client() -> list[int]:
        async with AsyncWeb3(WebSocketProvider(small_queue_node.ws_url)) as aw3:
            await aw3.eth.subscribe("newHeads")
            miner = threading.Thread(target=mine_blocks, args=(small_queue_node.http_url, blocks))
            miner.start()
            messages = await collect(aw3, blocks, timeout=30)
            miner.join()
            return [m["result"]["number"] for m in messages]

    numbers = asyncio.run(fast_client())

    assert numbers == list(range(1, blocks + 1))
    # The server dropped the slow client: its socket reaches EOF well before 300 headers.
    received = slow.read_until_closed()
    assert received < blocks * 1000


def mine_blocks(url: str, count: int) -> None:
    with httpx.Client() as client:
        for index in range(count):
            client.post(url, json={"jsonrpc": "2.0", "id": index, "method": "evm_mine"}).raise_for_status()
