"""The odds stream: a WebSocket service that pushes odds changes and bet status.

Protocol on `/stream`, JSON text frames. The client sends
`{"op": "subscribe", "markets": [1, 2]}`, `{"op": "unsubscribe", "markets": [1]}` or
`{"op": "auth", "token": TOKEN}` (a token from `POST /api/login`). The server replies
`{"type": "subscribed", "markets": [...]}` followed by the current odds of each new
market, then pushes `{"type": "odds", "market_id", "odds", "version", "updated_at"}` on
every odds change and, once authenticated, `{"type": "bet", "bet_id", "market_id",
"status", "payout"}` whenever one of the bettor's bets changes status. Errors are
`{"type": "error", "detail": TEXT}` and leave the connection open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from sqlalchemy.engine import Engine
from sqlmodel import select
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from wagerlab.platform.api.markets import odds_json
from wagerlab.platform.auth import token_digest
from wagerlab.platform.cache import ODDS_CHANNEL, PlatformCache
from wagerlab.platform.config import PlatformConfig
from wagerlab.platform.db import Bet, MarketOdds, User, make_engine, read_session
from wagerlab.platform.metrics import MetricsMiddleware, ServiceMetrics, StreamCollector
from wagerlab.platform.stream.hub import StreamHub, Subscriber

logger = logging.getLogger(__name__)

BET_POLL_SECONDS = 0.5
ODDS_POLL_SECONDS = 0.2
MAX_MARKETS_PER_CLIENT = 1_000


def _load_odds(engine: Engine, market_id: int) -> dict[str, Any] | None:
    with read_session(engine) as session:
        row = session.get(MarketOdds, market_id)
        return None if row is None else odds_json(row)


def _load_versions(engine: Engine) -> dict[int, int]:
    with read_session(engine) as session:
        return {row.market_id: row.version for row in session.exec(select(MarketOdds))}


def _load_address(engine: Engine, user_id: int) -> str | None:
    with read_session(engine) as session:
        user = session.get(User, user_id)
        return None if user is None else user.address


def _load_bet_status(engine: Engine, bettors: set[str]) -> dict[int, tuple[str, int, str, int]]:
    """Return bet id -> (bettor, market id, status, payout) for the bets of `bettors`."""
    if not bettors:
        return {}
    with read_session(engine) as session:
        rows = session.exec(select(Bet).where(Bet.bettor.in_(sorted(bettors))))  # type: ignore[attr-defined]
        return {row.bet_id: (row.bettor, row.market_id, row.status.value, row.payout) for row in rows}


class StreamService:
    """The hub plus its two sources: the odds pub/sub channel and a poll of bet status."""

    def __init__(self, engine: Engine, cache: PlatformCache) -> None:
        self.engine = engine
        self.cache = cache
        self.hub = StreamHub()
        self._known_bets: dict[int, str] = {}

    async def follow_odds(self) -> None:
        """Push each announced odds change, loading the new odds once for all subscribers."""
        while True:
            pubsub = self.cache.client.pubsub()
            try:
                await pubsub.subscribe(ODDS_CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._push_odds(message["data"])
            except OSError as err:
                logger.warning("stream: odds subscription lost (%s); subscribing again", err)
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def poll_odds(self) -> None:
        """Push odds changes found by polling versions, for a cache that is private to the api.

        The embedded fakeredis lives inside the api process, so its broadcasts never reach
        this process; the `odds` table is the only shared source then.
        """
        versions = await run_in_threadpool(_load_versions, self.engine)
        while True:
            await asyncio.sleep(ODDS_POLL_SECONDS)
            try:
                current = await run_in_threadpool(_load_versions, self.engine)
            except Exception:
                logger.exception("stream: reading odds versions failed; trying again in %s s", ODDS_POLL_SECONDS)
                continue
            for market_id, version in current.items():
                if versions.get(market_id) != version:
                    await self._push_odds(json.dumps({"market_id": market_id}).encode())
            versions = current

    async def _push_odds(self, data: bytes) -> None:
        try:
            market_id = int(json.loads(data)["market_id"])
        except (ValueError, KeyError, TypeError) as err:
            logger.warning("stream: ignored a malformed odds change %r: %s", data[:200], err)
            return
        odds = await run_in_threadpool(_load_odds, self.engine, market_id)
        if odds is not None:
            self.hub.publish_market(market_id, {"type": "odds"} | odds)

    async def follow_bets(self) -> None:
        """Poll the bets of authenticated subscribers and push every status change."""
        while True:
            await asyncio.sleep(BET_POLL_SECONDS)
            bettors = self.hub.bettors()
            try:
                bets = await run_in_threadpool(_load_bet_status, self.engine, bettors)
            except Exception:
                logger.exception("stream: reading bet status failed; trying again in %s s", BET_POLL_SECONDS)
                continue
            for bet_id, (bettor, market_id, status, payout) in bets.items():
                if self._known_bets.get(bet_id) != status:
                    self._known_bets[bet_id] = status
                    message = {"type": "bet", "bet_id": bet_id, "market_id": market_id, "status": status, "payout": payout}
                    self.hub.publish_bettor(bettor, message)

    async def handle(self, websocket: WebSocket) -> None:
        await websocket.accept()

        async def send_text(text: str) -> None:
            try:
                await websocket.send_text(text)
            except WebSocketDisconnect as err:
                raise ConnectionError(f"client closed the connection with code {err.code}") from err

        subscriber = self.hub.connect(send_text, websocket.close)
        try:
            while not subscriber.dropped:
                await self._handle_message(subscriber, await websocket.receive_text())
        except WebSocketDisconnect:
            pass
        finally:
            await self.hub.disconnect(subscriber)

    async def _handle_message(self, subscriber: Subscriber, text: str) -> None:
        try:
            request = json.loads(text)
            op = request["op"]
        except (ValueError, KeyError, TypeError):
            self.hub.send_to(subscriber, {"type": "error", "detail": f"invalid message {text[:100]!r}: expected JSON with an `op`"})
            return
        if op in ("subscribe", "unsubscribe"):
            await self._change_markets(subscriber, op, request.get("markets"))
        elif op == "auth":
            await self._authenticate(subscriber, request.get("token"))
        else:
            self.hub.send_to(subscriber, {"type": "error", "detail": f"unknown op {op!r}: expected subscribe, unsubscribe or auth"})

    async def _change_markets(self, subscriber: Subscriber, op: str, markets: Any) -> None:
        if not isinstance(markets, list) or not all(isinstance(m, int) and not isinstance(m, bool) for m in markets):
            self.hub.send_to(subscriber, {"type": "error", "detail": f"`markets` must be a list of market ids, got {markets!r}"})
            return
        if op == "unsubscribe":
            subscriber.markets.difference_update(markets)
            self.hub.send_to(subscriber, {"type": "subscribed", "markets": sorted(subscriber.markets)})
            return
        if len(subscriber.markets | set(markets)) > MAX_MARKETS_PER_CLIENT:
            detail = f"a client may follow at most {MAX_MARKETS_PER_CLIENT} markets; unsubscribe from some first"
            self.hub.send_to(subscriber, {"type": "error", "detail": detail})
            return
        new = set(markets) - subscriber.markets
        subscriber.markets.update(markets)
        self.hub.send_to(subscriber, {"type": "subscribed", "markets": sorted(subscriber.markets)})
        for market_id in sorted(new):
            odds = await run_in_threadpool(_load_odds, self.engine, market_id)
            if odds is not None:
                self.hub.send_to(subscriber, {"type": "odds"} | odds)

    async def _authenticate(self, subscriber: Subscriber, token: Any) -> None:
        user_id = await self.cache.user_for_token(token_digest(token)) if isinstance(token, str) and token else None
        address = None if user_id is None else await run_in_threadpool(_load_address, self.engine, user_id)
        if address is None:
            self.hub.send_to(subscriber, {"type": "error", "detail": "token is unknown or expired: log in again with /api/login"})
            return
        subscriber.bettor = address
        self.hub.send_to(subscriber, {"type": "authenticated", "bettor": address})


def build_stream_app(config: PlatformConfig, *, engine: Engine | None = None, cache: PlatformCache | None = None) -> Starlette:
    """Return the stream app; its lifespan runs the odds and bet sources.

    Odds changes come over Redis pub/sub when the config names a Redis (or a test passes a
    cache it shares with the api), and from polling the `odds` table otherwise.
    """
    owns_cache = cache is None
    follows_pubsub = cache is not None or config.redis_url is not None
    service = StreamService(engine or make_engine(config.db_url), cache or PlatformCache.from_config(config))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        odds_source = service.follow_odds() if follows_pubsub else service.poll_odds()
        sources = [asyncio.create_task(odds_source, name="stream-odds"), asyncio.create_task(service.follow_bets(), name="stream-bets")]
        logger.info("stream started")
        try:
            yield
        finally:
            for task in sources:
                task.cancel()
            await asyncio.gather(*sources, return_exceptions=True)
            if owns_cache:
                await service.cache.close()
            logger.info("stream stopped")

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(service.hub.stats.to_json())

    metrics = ServiceMetrics("stream")
    metrics.register(StreamCollector(lambda: service.hub.stats.to_json()))
    routes = [WebSocketRoute("/stream", service.handle), Route("/health", health), Route("/stats", stats), metrics.route()]
    app = Starlette(routes=routes, middleware=[Middleware(MetricsMiddleware, metrics=metrics)], lifespan=lifespan)
    app.state.stream = service
    return app


def run_stream(config: PlatformConfig) -> None:
    """Serve the odds stream on config.host and config.stream_port until interrupted."""
    logger.info("stream starting on %s", config.stream_url)
    uvicorn.Server(uvicorn.Config(build_stream_app(config), host=config.host, port=config.stream_port, log_level="info", access_log=False)).run()
