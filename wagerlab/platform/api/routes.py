"""The route table of the REST API, and the per-route request counter."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from wagerlab.platform.api import admin, bets, markets, openapi, users
from wagerlab.platform.api.context import context


async def get_stats(request: Request) -> JSONResponse:
    """Return the cache counters and requests per route, for the runner to cross-check."""
    return JSONResponse(context(request).cache.stats.to_json())


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


routes: list[BaseRoute] = [
    Route("/api/register", users.register, methods=["POST"]),
    Route("/api/login", users.login, methods=["POST"]),
    Route("/api/markets", markets.list_markets, methods=["GET"]),
    Route("/api/markets/{market_id}/odds", markets.get_odds, methods=["GET"]),
    Route("/api/quotes", markets.post_quote, methods=["POST"]),
    Route("/api/bets", bets.post_bet, methods=["POST"]),
    Route("/api/bets", bets.list_bets, methods=["GET"]),
    Route("/api/bets/{bet_id}", bets.get_bet, methods=["GET"]),
    Route("/api/claims", bets.post_claim, methods=["POST"]),
    Route("/api/balance", bets.get_balance, methods=["GET"]),
    Route("/api/deposit", bets.get_deposit, methods=["GET"]),
    Route("/api/transactions/{tx_id}", bets.get_transaction, methods=["GET"]),
    Route("/api/admin/markets", admin.create_market, methods=["POST"]),
    Route("/api/admin/markets/{market_id}/odds", admin.update_odds, methods=["PUT"]),
    Route("/api/admin/markets/{market_id}/close", admin.close_market, methods=["POST"]),
    Route("/api/admin/pause", admin.pause, methods=["POST"]),
    Route("/api/admin/unpause", admin.unpause, methods=["POST"]),
    Route("/api/admin/cache-outage", admin.start_cache_outage, methods=["POST"]),
    Route("/api/admin/cache-outage", admin.get_cache_outage, methods=["GET"]),
    Route("/api/stats", get_stats, methods=["GET"]),
    Route("/api/health", health, methods=["GET"]),
    Route("/api/openapi.json", openapi.get_openapi, methods=["GET"]),
]


class RequestCounter:
    """ASGI middleware that counts requests by method and route template, e.g. `GET /api/bets/{bet_id}`.

    The router stores the matched route in the scope, which this middleware shares, so the
    template is known once the request has been handled. Unmatched paths count as `unmatched`.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route")
            label = f"{scope['method']} {route.path}" if isinstance(route, Route) else "unmatched"
            scope["app"].state.api.cache.count_request(label)
