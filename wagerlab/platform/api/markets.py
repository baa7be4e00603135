"""Markets, odds (read through the cache) and quotes."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from wagerlab.odds import MAX_DB_AMOUNT
from wagerlab.platform import quotes
from wagerlab.platform.api.context import ApiContext, context, current_user
from wagerlab.platform.api.pause import reject_if_paused
from wagerlab.platform.auth import authenticated_user_id
from wagerlab.platform.api.validation import parse_path_int, read_json_object, require_int
from wagerlab.platform.db import Market, MarketOdds, MarketStatus, read_session, write_session
from wagerlab.platform.errors import ConflictError, NotFoundError, ValidationError

logger = logging.getLogger(__name__)


def market_json(market: Market) -> dict[str, Any]:
    return {
        "market_id": market.market_id,
        "name": market.name,
        "outcomes": list(market.outcomes),
        "status": MarketStatus(market.status).value,
        "closes_at": market.closes_at,
    }


def odds_json(row: MarketOdds) -> dict[str, Any]:
    return {"market_id": row.market_id, "odds": list(row.odds), "version": row.version, "updated_at": row.updated_at}


def load_market(engine: Engine, market_id: int) -> Market | None:
    with read_session(engine) as session:
        market = session.get(Market, market_id)
        return None if market is None else Market(**market.model_dump())


def _list_markets(engine: Engine) -> list[dict[str, Any]]:
    with read_session(engine) as session:
        return [market_json(market) for market in session.exec(select(Market).order_by(Market.market_id))]


def _load_odds(engine: Engine, market_id: int) -> dict[str, Any] | None:
    with read_session(engine) as session:
        row = session.get(MarketOdds, market_id)
        return None if row is None else odds_json(row)


async def cached_odds(ctx: ApiContext, market_id: int) -> dict[str, Any]:
    """Return the odds of a market through the cache, 404 when the market has none."""

    async def load(market_id: int) -> dict[str, Any] | None:
        return await run_in_threadpool(_load_odds, ctx.engine, market_id)

    odds = await ctx.cache.get_odds(market_id, load)
    if odds is None:
        raise NotFoundError(f"market {market_id} not found", field="market_id")
    return odds


async def list_markets(request: Request) -> JSONResponse:
    await current_user(request)
    return JSONResponse(await run_in_threadpool(_list_markets, context(request).engine))


async def get_odds(request: Request) -> JSONResponse:
    # The token lookup alone authenticates this hot path, so a cached read queries no
    # database. NOTE: a deleted user's token still reads odds until the token expires.
    await authenticated_user_id(context(request).cache, context(request).engine, request)
    market_id = parse_path_int(request, "market_id")
    return JSONResponse(await cached_odds(context(request), market_id))


def check_open_for_bets(market: Market | None, market_id: int, now: int) -> Market:
    """Return the market if it takes bets at time `now`; 404 or 409 naming the reason otherwise."""
    if market is None:
        raise NotFoundError(f"market {market_id} not found", field="market_id")
    if market.status != MarketStatus.OPEN:
        raise ConflictError(f"market {market_id} is {MarketStatus(market.status).value}, not open", field="market_id")
    if market.closes_at <= now:
        raise ConflictError(f"betting on market {market_id} closed at {market.closes_at} (now {now})", field="market_id")
    return market


def _store_quote(engine: Engine, row: Any) -> None:
    with write_session(engine) as session:
        session.add(row)


async def post_quote(request: Request) -> JSONResponse:
    ctx = context(request)
    user = await current_user(request)
    body = await read_json_object(request)
    market_id = require_int(body, "market_id")
    outcome = require_int(body, "outcome", maximum=255)
    stake = require_int(body, "stake", minimum=1, maximum=MAX_DB_AMOUNT)
    await reject_if_paused(ctx.pause, "a new quote")

    now = await ctx.clock.now()
    market = check_open_for_bets(await run_in_threadpool(load_market, ctx.engine, market_id), market_id, now)
    if outcome >= len(market.outcomes):
        detail = f"outcome must be below {len(market.outcomes)} for market {market_id}, got {outcome}"
        raise ValidationError(detail, field="outcome")
    odds = (await cached_odds(ctx, market_id))["odds"][outcome]

    deployment = ctx.config.deployment
    expiry = now + ctx.config.quote_ttl_seconds
    quote = quotes.new_quote(user.address, market_id, outcome, odds, stake, expiry)  # type: ignore[arg-type]
    signature = quotes.sign(ctx.odds_signer, deployment.chain_id, deployment.sportsbook, quote)
    assert user.id is not None
    await run_in_threadpool(_store_quote, ctx.engine, quotes.to_row(quote, user.id, signature))
    logger.info("quote %s for user %s: market %s outcome %s odds %s stake %s", quote.nonce, user.id, market_id, outcome, odds, stake)

    return JSONResponse(
        {
            "quote": quotes.to_json(quote),
            "signature": signature,
            "sportsbook": deployment.sportsbook,
            "chain_id": deployment.chain_id,
        }
    )
