"""The JSON-RPC server of the chain node: HTTP `POST /` and WebSocket `/` on one port.

Every node call runs on one worker thread, so the event loop stays free for WebSocket
pings and other connections while py-evm executes. Each WebSocket connection has a
bounded send queue; a client that falls `SEND_QUEUE_LIMIT` messages behind is
disconnected instead of slowing the others down.

The server also handles the fault-injection methods `wagerlab_dropConnections`,
`wagerlab_restart` and `wagerlab_setFaults` (see `wagerlab.chain.faults`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Final

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from wagerlab.chain import rpc
from wagerlab.chain.accounts import DEV_ACCOUNT_COUNT
from wagerlab.chain.errors import (
    InternalError,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    NodeError,
    ParseError,
)
from wagerlab.chain.faults import Fault, FaultInjector, FaultSettings, parse_fault_settings
from wagerlab.chain.node import LogEntry, NewBlock, Node
from wagerlab.chain.state import dump_state, load_state

logger = logging.getLogger(__name__)

SEND_QUEUE_LIMIT: Final = 1000
MAX_BATCH_SIZE: Final = 1000
WS_CLOSE_NORMAL: Final = 1000
WS_CLOSE_SERVICE_RESTART: Final = 1012
WS_CLOSE_TRY_AGAIN_LATER: Final = 1013
SUBSCRIPTION_METHODS: Final = frozenset(["eth_subscribe", "eth_unsubscribe"])
SUBSCRIPTION_KINDS: Final = ("newHeads", "logs", "newPendingTransactions")
CONTROL_METHODS: Final = frozenset(["wagerlab_setFaults", "wagerlab_dropConnections", "wagerlab_restart"])
_connection_ids = itertools.count(1)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _result(request_id: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _error(request_id: Any, error: NodeError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}


# ---------------------------------------------------------------------------
# WebSocket connections and subscriptions


@dataclass
class Subscription:
    id: str
    kind: str
    connection: Connection
    log_filter: rpc.LogFilter | None = None


@dataclass(eq=False)
class Connection:
    """One WebSocket client: its send queue and its subscriptions."""

    websocket: WebSocket
    queue_limit: int = SEND_QUEUE_LIMIT
    id: int = field(default_factory=lambda: next(_connection_ids))
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)
    close_requested: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(self.queue_limit)

    def send(self, text: str) -> None:
        """Queue a message; on overflow mark the connection for closing and drop the message."""
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            logger.warning(
                "websocket %d fell %d messages behind; closing it", self.id, self.queue_limit
            )
            self.overflowed.set()


class SubscriptionHub:
    """Fans chain events out to `newHeads`, `logs` and `newPendingTransactions` subscriptions.

    The node calls `on_block`, `on_removed_logs` and `on_pending_transaction` from its
    worker thread. The hub moves each event onto the event loop, where each subscriber's
    matching messages go into its send queue. After a reorg, log subscribers get the
    dropped blocks' logs with `removed: true`, newest first, before the new blocks' logs.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, faults: FaultInjector | None = None) -> None:
        self._loop = loop
        self._faults = faults or FaultInjector()
        self._subscriptions: dict[str, Subscription] = {}
        self._kind_counts = {kind: 0 for kind in SUBSCRIPTION_KINDS}
        self.connections: set[Connection] = set()

    def wants_blocks(self) -> bool:
        return self._kind_counts["newHeads"] > 0 or self._kind_counts["logs"] > 0

    def wants_logs(self) -> bool:
        return self._kind_counts["logs"] > 0

    def wants_pending(self) -> bool:
        return self._kind_counts["newPendingTransactions"] > 0

    def on_block(self, event: NewBlock) -> None:
        self._loop.call_soon_threadsafe(self._publish, event)

    def on_removed_logs(self, logs: tuple[LogEntry, ...]) -> None:
        self._loop.call_soon_threadsafe(self._publish_logs, logs)

    def on_pending_transaction(self, tx_hash: bytes) -> None:
        self._loop.call_soon_threadsafe(self._publish_pending, rpc.data(tx_hash))

    def close_all(self) -> int:
        """Ask every WebSocket connection to close; return how many were open."""
        for connection in self.connections:
            connection.close_requested.set()
        logger.info("closing all %d websocket connections", len(self.connections))
        return len(self.connections)

    def subscribe(self, connection: Connection, params: list[Any]) -> str:
        kind = rpc.param(params, 0, "subscriptionName")
        log_filter = None
        if kind == "logs":
            criteria = rpc.decode_object(rpc.param(params, 1, "filter", {}), "filter")
            log_filter = rpc.decode_log_filter(criteria, "filter")
        elif kind not in SUBSCRIPTION_KINDS:
            raise InvalidParams(
                "subscriptionName", f"expected one of {list(SUBSCRIPTION_KINDS)}, got {kind!r}"
            )
        subscription = Subscription(
            id="0x" + secrets.token_hex(16), kind=kind, connection=connection, log_filter=log_filter
        )
        self._subscriptions[subscription.id] = subscription
        connection.subscriptions[subscription.id] = subscription
        self._kind_counts[kind] += 1
        logger.info("websocket %d subscribed to %s as %s", connection.id, kind, subscription.id)
        return subscription.id

    def unsubscribe(self, connection: Connection, subscription_id: Any) -> bool:
        subscription = connection.subscriptions.pop(subscription_id, None) if isinstance(subscription_id, str) else None
        if subscription is None:
            return False
        self._forget(subscription)
        logger.info("websocket %d unsubscribed %s", connection.id, subscription_id)
        return True

    def drop_connection(self, connection: Connection) -> None:
        for subscription in connection.subscriptions.values():
            self._forget(subscription)
        connection.subscriptions.clear()

    def _forget(self, subscription: Subscription) -> None:
        del self._subscriptions[subscription.id]
        self._kind_counts[subscription.kind] -= 1

    def _publish(self, event: NewBlock) -> None:
        header_json = _dumps(event.header)
        for subscription in list(self._subscriptions.values()):
            if subscription.kind == "newHeads":
                self._notify(subscription, header_json)
        self._publish_logs(event.logs)

    def _publish_logs(self, logs: tuple[LogEntry, ...]) -> None:
        log_json: dict[int, str] = {}
        for subscription in list(self._subscriptions.values()):
            if subscription.kind != "logs":
                continue
            assert subscription.log_filter is not None
            for position, entry in enumerate(logs):
                if subscription.log_filter.matches(entry.address, entry.topics):
                    if position not in log_json:
                        log_json[position] = _dumps(entry.wire)
                    self._notify(subscription, log_json[position])

    def _publish_pending(self, tx_hash_json: str) -> None:
        quoted = _dumps(tx_hash_json)
        for subscription in list(self._subscriptions.values()):
            if subscription.kind == "newPendingTransactions":
                self._notify(subscription, quoted)

    def _notify(self, subscription: Subscription, result_json: str) -> None:
        message = (
            '{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"'
            + subscription.id
            + '","result":'
            + result_json
            + "}}"
        )
        subscription.connection.send(message)
        if self._faults.duplicate():
            subscription.connection.send(message)


# ---------------------------------------------------------------------------
# Request handling


class RpcServer:
    """Decodes JSON-RPC envelopes, runs methods on the node's worker thread, encodes replies."""

    def __init__(
        self, node: Node, send_queue_limit: int = SEND_QUEUE_LIMIT, faults: FaultSettings | None = None
    ) -> None:
        if send_queue_limit < 1:
            raise ValueError(f"send_queue_limit must be at least 1, got {send_queue_limit!r}")
        self.node = node
        self.faults = FaultInjector(faults)
        self._send_queue_limit = send_queue_limit
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chain-node")
        self._hub: SubscriptionHub | None = None

    def hub(self) -> SubscriptionHub:
        if self._hub is None:
            self._hub = SubscriptionHub(asyncio.get_running_loop(), self.faults)
            self.node.add_block_listener(self._hub)
        return self._hub

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def handle_payload(self, payload: str | bytes, connection: Connection | None) -> str | None:
        """Answer one HTTP body or WebSocket message; None when nothing needs a reply."""
        try:
            message = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as err:
            logger.info("parse error on %s: %s", _where(connection), err)
            return _dumps(_error(None, ParseError(f"parse error: {err}")))

        if isinstance(message, list):
            return await self._handle_batch(message, connection)
        reply = await self._handle_one(message, connection)
        return None if reply is None else _dumps(reply)

    async def _handle_batch(self, batch: list[Any], connection: Connection | None) -> str | None:
        if not batch:
            return _dumps(_error(None, InvalidRequest("invalid request: empty batch")))
        if len(batch) > MAX_BATCH_SIZE:
            error = InvalidRequest(f"invalid request: batch of {len(batch)} exceeds {MAX_BATCH_SIZE}")
            return _dumps(_error(None, error))
        replies = [await self._handle_one(item, connection) for item in batch]
        answered = [reply for reply in replies if reply is not None]
        return _dumps(answered) if answered else None

    async def _handle_one(self, message: Any, connection: Connection | None) -> dict[str, Any] | None:
        try:
            request_id, method, params, is_notification = _parse_request(message)
        except NodeError as err:
            request_id = message.get("id") if isinstance(message, dict) else None
            logger.info("invalid request on %s: %s", _where(connection), err.message)
            return _error(request_id if _valid_id(request_id) else None, err)

        try:
            result = await self._run(method, params, connection)
        except NodeError as err:
            logger.debug("%s id=%r on %s failed: %s", method, request_id, _where(connection), err.message)
            reply = _error(request_id, err)
        except Exception as err:
            logger.exception("%s id=%r on %s raised", method, request_id, _where(connection))
            reply = _error(request_id, InternalError(f"internal error in {method}: {err}"))
        else:
            reply = _result(request_id, result)
        return None if is_notification else reply

    async def _run(self, method: str, params: list[Any], connection: Connection | None) -> Any:
        if method in CONTROL_METHODS:
            return await self._run_control(method, params)
        fault = self.faults.draw()
        if fault is Fault.FAIL:
            raise InternalError(f"injected fault: {method} failed on purpose (wagerlab_setFaults)")
        if fault is Fault.DELAY:
            await asyncio.sleep(self.faults.settings.delay_ms / 1000)
        if method in SUBSCRIPTION_METHODS:
            if connection is None:
                raise MethodNotFound(method, "is only available over WebSocket")
            if method == "eth_subscribe":
                return self.hub().subscribe(connection, params)
            return self.hub().unsubscribe(connection, rpc.param(params, 0, "subscriptionId"))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.node.request, method, params)

    async def _run_control(self, method: str, params: list[Any]) -> Any:
        """Run a `wagerlab_*` fault-injection method; these are never faulted themselves."""
        if method == "wagerlab_setFaults":
            return self.faults.configure(parse_fault_settings(rpc.param(params, 0, "faults")))
        if method == "wagerlab_dropConnections":
            return self.hub().close_all()
        loop = asyncio.get_running_loop()
        filters = await loop.run_in_executor(self._executor, self.node.clear_filters)
        connections = self.hub().close_all()
        logger.info("restart: dropped %d filters and %d websocket connections", filters, connections)
        return {"filters": filters, "connections": connections}

    # -- transports -------------------------------------------------------------------

    async def http_endpoint(self, request: Request) -> Response:
        body = await request.body()
        reply = await self.handle_payload(body, None)
        if reply is None:
            return Response(status_code=204)
        return Response(reply, media_type="application/json")

    async def handle_http_post(self, receive: Receive, send: Send) -> None:
        """Handle `POST /` in plain ASGI, as `http_endpoint` does but with less overhead."""
        body = await _read_body(receive)
        if body is None:
            return
        reply = await self.handle_payload(body, None)
        if reply is None:
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        payload = reply.encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def websocket_endpoint(self, websocket: WebSocket) -> None:
        await websocket.accept()
        connection = Connection(websocket, queue_limit=self._send_queue_limit)
        hub = self.hub()
        hub.connections.add(connection)
        logger.info("websocket %d opened from %s", connection.id, websocket.client)
        tasks = {
            asyncio.create_task(_write_loop(connection)),
            asyncio.create_task(self._read_loop(connection)),
            asyncio.create_task(connection.overflowed.wait()),
            asyncio.create_task(connection.close_requested.wait()),
        }
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hub.connections.discard(connection)
            hub.drop_connection(connection)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await _close(connection)
            logger.info("websocket %d closed", connection.id)

    async def _read_loop(self, connection: Connection) -> None:
        websocket = connection.websocket
        while True:
            try:
                message = await websocket.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                return
            payload = message.get("text")
            if payload is None:
                payload = message.get("bytes") or b""
            reply = await self.handle_payload(payload, connection)
            if reply is not None:
                connection.send(reply)


async def _read_body(receive: Receive) -> bytes | None:
    """Read a whole HTTP request body; None when the client disconnected first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class HttpFastPath:
    """ASGI middleware that sends `POST /` straight to the RPC server, skipping Starlette's
    routing and Request/Response objects on the hot path; everything else passes through."""

    def __init__(self, app: ASGIApp, server: RpcServer) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/":
            await self.server.handle_http_post(receive, send)
            return
        await self.app(scope, receive, send)


async def _write_loop(connection: Connection) -> None:
    while True:
        text = await connection.queue.get()
        try:
            await connection.websocket.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError) as err:
            logger.info("websocket %d send failed: %s", connection.id, err)
            return


async def _close(connection: Connection) -> None:
    code = WS_CLOSE_NORMAL
    if connection.overflowed.is_set():
        code = WS_CLOSE_TRY_AGAIN_LATER
    elif connection.close_requested.is_set():
        code = WS_CLOSE_SERVICE_RESTART
    with contextlib.suppress(Exception):
        await asyncio.wait_for(connection.websocket.close(code=code), timeout=1.0)


def _where(connection: Connection | None) -> str:
    return "http" if connection is None else f"websocket {connection.id}"


def _valid_id(request_id: Any) -> bool:
    return request_id is None or (isinstance(request_id, (str, int)) and not isinstance(request_id, bool))


def _parse_request(message: Any) -> tuple[Any, str, list[Any], bool]:
    """Validate one request object; return its id, method, params and notification flag."""
    if not isinstance(message, dict):
        raise InvalidRequest(f"invalid request: expected a JSON object, got {type(message).__name__}")
    if message.get("jsonrpc") != "2.0":
        raise InvalidRequest(f"invalid request: jsonrpc must be '2.0', got {message.get('jsonrpc')!r}")
    method = message.get("method")
    if not isinstance(method, str) or not method:
        raise InvalidRequest(f"invalid request: method must be a non-empty string, got {method!r}")
    request_id = message.get("id")
    if not _valid_id(request_id):
        raise InvalidRequest(f"invalid request: id must be a string, number or null, got {request_id!r}")
    params = message.get("params", [])
    if params is None:
        params = []
    if not isinstance(params, list):
        raise InvalidParams("params", f"expected a positional array, got {type(params).__name__}")
    return request_id, method, params, "id" not in message


# ---------------------------------------------------------------------------
# Application and entry point


def build_app(
    node: Node,
    *,
    send_queue_limit: int = SEND_QUEUE_LIMIT,
    faults: FaultSettings | None = None,
    state_file: Path | None = None,
) -> Starlette:
    """Build the ASGI app serving `node` over HTTP `POST /` and WebSocket `/`.

    `send_queue_limit` is how many messages a WebSocket client may fall behind before
    the server closes its connection. `faults` sets fault injection from the start. With
    `state_file`, the chain is saved there when the app shuts down.
    """
    server = RpcServer(node, send_queue_limit, faults)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        server.hub()
        logger.info("chain node app started, chain id %d", node.chain_id)
        try:
            yield
        finally:
            server.close()
            node.close()
            # NOTE: saved here, not after uvicorn returns, because uvicorn re-raises
            # SIGTERM once the server has stopped, which ends the process at once.
            if state_file is not None:
                dump_state(node, state_file)
            logger.info("chain node app stopped")

    app = Starlette(
        routes=[
            Route("/", server.http_endpoint, methods=["POST"]),
            WebSocketRoute("/", server.websocket_endpoint),
        ],
        middleware=[Middleware(HttpFastPath, server=server)],
        lifespan=lifespan,
    )
    app.state.rpc_server = server
    return app


def run_node(
    host: str,
    port: int,
    *,
    accounts: int = DEV_ACCOUNT_COUNT,
    log_level: str = "info",
    ready_file: Path | None = None,
    state_file: Path | None = None,
    faults: FaultSettings | None = None,
) -> None:
    """Serve a chain on host:port until SIGINT or SIGTERM.

    With `ready_file`, write `{"http": URL, "ws": URL}` to it once the socket listens;
    port 0 picks a free port, and the file carries the one chosen. With `state_file`, the
    chain is loaded from that file when it exists and saved to it when the server stops.
    Raises `StateFileError` when the file exists but cannot be replayed.
    """
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if state_file is not None and state_file.exists():
        node = load_state(state_file, accounts)
    else:
        node = Node(accounts=accounts)
    config = uvicorn.Config(
        build_app(node, faults=faults, state_file=state_file),
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        access_log=False,
        ws_max_size=16 * 2**20,
    )
    asyncio.run(_serve(uvicorn.Server(config), ready_file))


async def _serve(server: uvicorn.Server, ready_file: Path | None) -> None:
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("the chain node stopped before it started listening")
        await asyncio.sleep(0.02)
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    urls = {"http": f"http://{host}:{port}", "ws": f"ws://{host}:{port}"}
    logger.info("chain node listening on %s and %s", urls["http"], urls["ws"])
    if ready_file is not None:
        _write_atomically(ready_file, _dumps(urls))
    await task
    logger.info("chain node stopped")


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
