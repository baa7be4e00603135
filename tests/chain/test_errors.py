"""JSON-RPC error codes for malformed input, and batches, over HTTP and WebSocket."""

from __future__ import annotations

import json
from typing import Any, Iterator

import httpx
import pytest
from chain_helpers import RunningNode
from websockets.sync.client import ClientConnection, connect

# (raw body, expected error code, a word the message must contain)
MALFORMED: list[tuple[str, int, str]] = [
    ("{not json", -32700, "parse error"),
    ("", -32700, "parse error"),
    ("42", -32600, "JSON object"),
    ('"eth_blockNumber"', -32600, "JSON object"),
    ("[]", -32600, "empty batch"),
    ('{"jsonrpc":"1.0","id":1,"method":"eth_blockNumber"}', -32600, "jsonrpc"),
    ('{"jsonrpc":"2.0","id":1}', -32600, "method"),
    ('{"jsonrpc":"2.0","id":1,"method":7}', -32600, "method"),
    ('{"jsonrpc":"2.0","id":[1],"method":"eth_blockNumber"}', -32600, "id"),
    ('{"jsonrpc":"2.0","id":1,"method":"eth_noSuchThing","params":[]}', -32601, "eth_noSuchThing"),
    ('{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":{"a":1}}', -32602, "params"),
    ('{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":[]}', -32602, "address"),
    ('{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x12","latest"]}', -32602, "address"),
    ('{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x' + "11" * 20 + '","newest"]}', -32602, "block"),
    ('{"jsonrpc":"2.0","id":1,"method":"eth_getStorageAt","params":["0x' + "11" * 20 + '",12]}', -32602, "slot"),
    ('{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["0x1","yes"]}', -32602, "fullTransactions"),
    ('{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0xzz"]}', -32602, "transaction"),
    ('{"jsonrpc":"2.0","id":1,"method":"eth_call","params":["to"]}', -32602, "transaction"),
    ('{"jsonrpc":"2.0","id":1,"method":"evm_revert","params":["one"]}', -32602, "snapshotId"),
    ('{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"topics":"0x12"}]}', -32602, "topics"),
]


def check_error(reply: Any, code: int, word: str) -> None:
    assert isinstance(reply, dict), reply
    assert reply["jsonrpc"] == "2.0"
    assert reply["error"]["code"] == code, reply
    assert word.lower() in reply["error"]["message"].lower(), reply


@pytest.fixture
def ws(running: RunningNode) -> Iterator[ClientConnection]:
    with connect(running.ws_url) as connection:
        yield connection


@pytest.mark.parametrize(("body", "code", "word"), MALFORMED)
def test_http_malformed_request(running: RunningNode, body: str, code: int, word: str) -> None:
    response = httpx.post(running.http_url, content=body, headers={"content-type": "application/json"})

    assert response.status_code == 200
    check_error(response.json(), code, word)


@pytest.mark.parametrize(("body", "code", "word"), MALFORMED)
def test_ws_malformed_request(ws: ClientConnection, body: str, code: int, word: str) -> None:
    ws.send(body)

    check_error(json.loads(ws.recv(timeout=5)), code, word)
    # The connection survives the bad message.
    ws.send('{"jsonrpc":"2.0","id":2,"method":"eth_chainId"}')
    assert json.loads(ws.recv(timeout=5))["id"] == 2


def test_ws_binary_frame_is_accepted(ws: ClientConnection) -> None:
    ws.send(b'{"jsonrpc":"2.0","id":"b","method":"eth_chainId"}')

    reply = json.loads(ws.recv(timeout=5))

    assert reply["id"] == "b"
    assert reply["result"].startswith("0x")


def test_subscribe_over_http_is_rejected(running: RunningNode) -> None:
    reply = running.rpc("eth_subscribe", ["newHeads"])

    check_error(reply, -32601, "WebSocket")


def test_subscribe_unknown_kind(ws: ClientConnection) -> None:
    ws.send('{"jsonrpc":"2.0","id":3,"method":"eth_subscribe","params":["syncing"]}')

    check_error(json.loads(ws.recv(timeout=5)), -32602, "subscriptionName")


BATCH = [
    {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
    {"jsonrpc": "2.0", "id": "two", "method": "eth_noSuchThing"},
    {"jsonrpc": "2.0", "method": "eth_blockNumber"},
    7,
    {"jsonrpc": "2.0", "id": 4, "method": "eth_getBalance", "params": ["0x" + "00" * 20]},
]


def check_batch(replies: Any) -> None:
    assert isinstance(replies, list)
    # The notification (no id) gets no reply; everything else does, in order.
    assert len(replies) == 4
    assert [reply["id"] for reply in replies] == [1, "two", None, 4]
    assert replies[0]["result"].startswith("0x")
    assert replies[1]["error"]["code"] == -32601
    assert replies[2]["error"]["code"] == -32600
    assert replies[3]["result"] == "0x0"


def test_http_batch(running: RunningNode) -> None:
    response = httpx.post(running.http_url, json=BATCH)

    check_batch(response.json())


def test_ws_batch(ws: ClientConnection) -> None:
    ws.send(json.dumps(BATCH))

    check_batch(json.loads(ws.recv(timeout=5)))


def test_http_notification_only_gets_no_body(running: RunningNode) -> None:
    response = httpx.post(running.http_url, json={"jsonrpc": "2.0", "method": "eth_chainId"})

    assert response.status_code == 204
    assert response.content == b""


def test_http_get_is_not_allowed(running: RunningNode) -> None:
    assert httpx.get(running.http_url).status_code == 405
