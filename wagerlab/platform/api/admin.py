"""Admin endpoints: create and close markets, change odds, pause and unpause the Sportsbook.

`/api/admin/cache-outage` starts a simulated Redis outage in this process, for fault injection.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from wagerlab.odds import MAX_DB_AMOUNT, ODDS_SCALE
from wagerlab.platform.api.context import ApiContext, context, require_admin
from wagerlab.platform.api.markets import load_market, market_json
from wagerlab.platform.api.validation import (
    Body,
    check_int,
    parse_path_int,
    read_json_object,
    require_int,
    require_list,
    require_str,
)
from wagerlab.platform.cache.outage import MAX_OUTAGE_SECONDS
from wagerlab.platform.db import Market, MarketOdds, MarketStatus, now_ms, write_session
from wagerlab.platform.errors import ConflictError, NotFoundError, PlatformError, ValidationError

logger = logging.getLogger(__name__)

MAX_OUTCOMES = 8


def _operation_key(function: str, *ids: int) -> str:
    """Return an idempotency key for one admin request.

    The key is unique per request, so a retry after a failure sends a new transaction. The
    contract itself rejects a second createMarket or closeMarket of one market.
    """
    return ":".join([function, *map(str, ids), uuid.uuid4().hex])


def check_odds_list(value: Any, outcome_count: int) -> list[int]:
    if not isinstance(value, list) or len(value) != outcome_count:
        raise ValidationError(f"odds must be a list of {outcome_count} integers, one per outcome, got {value!r}", field="odds")
    return [check_int(item, "odds", minimum=ODDS_SCALE + 1, maximum=MAX_DB_AMOUNT) for item in value]


def _check_outcomes(body: Body) -> list[str]:
    outcomes = require_list(body, "outcomes", min_length=2, max_length=MAX_OUTCOMES)
    for name in outcomes:
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise ValidationError(f"outcomes must be names of 1 to 100 characters, got {name!r}", field="outcomes")
    return outcomes


def _insert_market(engine: Engine, market: Market, odds: MarketOdds) -> None:
    try:
        with write_session(engine) as session:
            if session.get(Market, market.market_id) is not None:
                raise ConflictError(f"market {market.market_id} already exists", field="market_id")
            # Copies, because the session expires the objects it committed.
            session.add(Market(**market.model_dump()))
            session.flush()
            session.add(MarketOdds(**odds.model_dump()))
    except IntegrityError as err:
        # On PostgreSQL two requests for one id can both pass the check; the primary key
        # rejects the second insert.
        raise ConflictError(f"market {market.market_id} already exists", field="market_id") from err


def _delete_market(engine: Engine, market_id: int) -> None:
    with write_session(engine) as session:
        odds = session.get(MarketOdds, market_id)
        if odds is not None:
            session.delete(odds)
            session.flush()
        market = session.get(Market, market_id)
        if market is not None:
            session.delete(market)


async def create_market(request: Request) -> JSONResponse:
    require_admin(request)
    ctx = context(request)
    body = await read_json_object(request)
    market_id = require_int(body, "market_id")
    name = require_str(body, "name", max_length=200)
    outcomes = _check_outcomes(body)
    # The contract checks closes_at against its block time, the clock that counts.
    closes_at = require_int(body, "closes_at", minimum=1, maximum=MAX_DB_AMOUNT)
    liability_cap = require_int(body, "liability_cap", maximum=MAX_DB_AMOUNT)
    odds = check_odds_list(body.get("odds"), len(outcomes))

    market = Market(market_id=market_id, name=name, outcomes=outcomes, closes_at=closes_at, liability_cap=liability_cap)
    await run_in_threadpool(_insert_market, ctx.engine, market, MarketOdds(market_id=market_id, odds=odds))
    args = [market_id, len(outcomes), closes_at, liability_cap]
    try:
        tx = await ctx.chainapi.run_operator("createMarket", args, _operation_key("createMarket", market_id))
    except PlatformError:
        logger.warning("createMarket %s failed on chain; removing its database rows", market_id)
        await run_in_threadpool(_delete_market, ctx.engine, market_id)
        raise

    logger.info("created market %s (%s) in tx %s", market_id, name, tx["tx_hash"])
    response = market_json(market) | {"liability_cap": liability_cap, "odds": odds, "tx_id": tx["tx_id"], "tx_hash": tx["tx_hash"]}
    return JSONResponse(response, status_code=201)


def _update_odds(engine: Engine, market_id: int, odds_body: Any) -> MarketOdds:
    with write_session(engine) as session:
        market = session.get(Market, market_id)
        # FOR UPDATE keeps concurrent odds changes from reading one version and losing an increment.
        row = session.get(MarketOdds, market_id, with_for_update=True)
        if market is None or row is None:
            raise NotFoundError(f"market {market_id} not found", field="market_id")
        if market.status != MarketStatus.OPEN:
            raise ConflictError(f"market {market_id} is {MarketStatus(market.status).value}; odds change only while open", field="market_id")
        row.odds = check_odds_list(odds_body, len(market.outcomes))
        row.version += 1
        row.updated_at = now_ms()
        session.add(row)
        session.flush()
        return MarketOdds(**row.model_dump())


async def update_odds(request: Request) -> JSONResponse:
    require_admin(request)
    ctx = context(request)
    market_id = parse_path_int(request, "market_id")
    body = await read_json_object(request)
    row = await run_in_threadpool(_update_odds, ctx.engine, market_id, body.get("odds"))
    await ctx.cache.invalidate_odds(market_id, row.version, row.updated_at)
    logger.info("odds of market %s are now %s (version %s)", market_id, row.odds, row.version)
    return JSONResponse({"market_id": market_id, "odds": list(row.odds), "version": row.version})


def _mark_closed(engine: Engine, market_id: int) -> None:
    # One conditional UPDATE: a read-then-write could overwrite a `settled` status that
    # the settlement monitor committed in between.
    with write_session(engine) as session:
        statement = (
            update(Market)
            .where(Market.market_id == market_id, Market.status == MarketStatus.OPEN)  # type: ignore[arg-type]
            .values(status=MarketStatus.CLOSED)
        )
        session.execute(statement)


async def close_market(request: Request) -> JSONResponse:
    require_admin(request)
    ctx = context(request)
    market_id = parse_path_int(request, "market_id")
    market = await run_in_threadpool(load_market, ctx.engine, market_id)
    if market is None:
        raise NotFoundError(f"market {market_id} not found", field="market_id")
    if market.status != MarketStatus.OPEN:
        raise ConflictError(f"market {market_id} is {MarketStatus(market.status).value}, not open", field="market_id")

    tx = await ctx.chainapi.run_operator("closeMarket", [market_id], _operation_key("closeMarket", market_id))
    await run_in_threadpool(_mark_closed, ctx.engine, market_id)
    logger.info("closed market %s in tx %s", market_id, tx["tx_hash"])
    return JSONResponse({"market_id": market_id, "status": "closed", "tx_id": tx["tx_id"], "tx_hash": tx["tx_hash"]})


async def _guardian_call(ctx: ApiContext, function: str) -> dict[str, Any]:
    tx = await ctx.chainapi.run_operator(function, [], _operation_key(function))
    logger.info("%s sent by the guardian in tx %s", function, tx["tx_hash"])
    return {"paused": function == "pause", "tx_id": tx["tx_id"], "tx_hash": tx["tx_hash"]}


async def pause(request: Request) -> JSONResponse:
    require_admin(request)
    return JSONResponse(await _guardian_call(context(request), "pause"))


async def unpause(request: Request) -> JSONResponse:
    require_admin(request)
    return JSONResponse(await _guardian_call(context(request), "unpause"))


async def start_cache_outage(request: Request) -> JSONResponse:
    """Make this process's Redis unreachable for `seconds`, for fault injection (`wagerlab fuzz`)."""
    require_admin(request)
    body = await read_json_object(request)
    seconds = require_int(body, "seconds", minimum=1, maximum=MAX_OUTAGE_SECONDS)
    cache = context(request).cache
    await cache.simulate_outage(seconds)
    logger.warning("admin started a simulated Redis outage of %d s", seconds)
    return JSONResponse(cache.outage_report())


async def get_cache_outage(request: Request) -> JSONResponse:
    require_admin(request)
    return JSONResponse(context(request).cache.outage_report())
