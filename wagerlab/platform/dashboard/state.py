"""The JSON state behind the dashboard: one snapshot of markets, bets, monitors, alerts and cache."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from wagerlab.odds import ODDS_SCALE, ONE_TOKEN
from wagerlab.platform.api.pause import PauseState
from wagerlab.platform.db import Alert, Bet, BetStatus, ChainTransaction, Correction, Market, MarketOdds, TxStatus, read_session
from wagerlab.platform.errors import ServiceUnavailableError

logger = logging.getLogger(__name__)

RECENT_BETS = 12
RECENT_ALERTS = 20
MONITORS_TIMEOUT_SECONDS = 0.5
"""Bound on the monitors' health request, so a hung monitors process cannot stall the page's updates."""


def format_tokens(amount: int) -> str:
    """Return an amount in the token's smallest unit as a decimal token string, e.g. `12.500000`."""
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), ONE_TOKEN)
    return f"{sign}{whole}.{fraction:06d}"


def format_odds(odds: int) -> str:
    whole, fraction = divmod(odds, ODDS_SCALE)
    return f"{whole}.{fraction // 10_000:02d}"


def read_database_state(engine: Engine) -> dict[str, Any]:
    """Read markets with odds, bets, alerts, reconciliation and the last guardian call in one session."""
    with read_session(engine) as session:
        return {
            "markets": _markets(session),
            "bets": _bets(session),
            "alerts": _alerts(session),
            "reconciliation": _reconciliation(session),
            "last_guardian_call": _last_guardian_call(session),
        }


def _markets(session: Session) -> list[dict[str, Any]]:
    query = select(Market, MarketOdds).join(MarketOdds, col(MarketOdds.market_id) == col(Market.market_id), isouter=True)
    markets = []
    for market, odds in session.exec(query.order_by(col(Market.market_id))):
        values = list(odds.odds) if odds is not None else []
        markets.append(
            {
                "market_id": market.market_id,
                "name": market.name,
                "status": market.status.value,
                "outcomes": list(market.outcomes),
                "odds": [format_odds(value) for value in values],
                "version": odds.version if odds is not None else None,
            }
        )
    return markets


def _bets(session: Session) -> dict[str, Any]:
    total, stake = session.exec(select(func.count(), func.coalesce(func.sum(Bet.stake), 0)).select_from(Bet)).one()
    open_count = session.exec(select(func.count()).select_from(Bet).where(Bet.status == BetStatus.OPEN)).one()
    recent = session.exec(select(Bet).order_by(col(Bet.bet_id).desc()).limit(RECENT_BETS)).all()
    return {
        "total": total,
        "open": open_count,
        "stake_total": format_tokens(int(stake)),
        "recent": [
            {
                "bet_id": bet.bet_id,
                "market_id": bet.market_id,
                "outcome": bet.outcome,
                "stake": format_tokens(bet.stake),
                "odds": format_odds(bet.odds),
                "status": bet.status.value,
                "bettor": bet.bettor,
            }
            for bet in recent
        ],
    }


def _alerts(session: Session) -> dict[str, Any]:
    total = session.exec(select(func.count()).select_from(Alert)).one()
    recent = session.exec(select(Alert).order_by(col(Alert.id).desc()).limit(RECENT_ALERTS)).all()
    return {
        "total": total,
        "recent": [
            {"id": alert.id, "rule": alert.rule, "severity": alert.severity.value, "source": alert.source, "detail": alert.detail, "created_at": alert.created_at}
            for alert in recent
        ],
    }


def _reconciliation(session: Session) -> dict[str, Any]:
    total = session.exec(select(func.count()).select_from(Correction)).one()
    last = session.exec(select(Correction).order_by(col(Correction.id).desc()).limit(1)).first()
    latest = None if last is None else {"kind": last.kind, "subject": last.subject, "reason": last.reason, "created_at": last.created_at}
    return {"corrections": total, "latest": latest}


def _last_guardian_call(session: Session) -> dict[str, Any] | None:
    """Return the newest mined `pause` or `unpause` that chainapi sent, or None."""
    query = (
        select(ChainTransaction)
        .where(col(ChainTransaction.function).in_(["pause", "unpause"]), ChainTransaction.status == TxStatus.MINED)
        .order_by(col(ChainTransaction.updated_at).desc())
        .limit(1)
    )
    row = session.exec(query).first()
    return None if row is None else {"function": row.function, "tx_hash": row.tx_hash, "block_number": row.block_number, "updated_at": row.updated_at}


async def read_paused(state: PauseState) -> bool | None:
    """Return the Sportsbook's `paused()`, or None when the node cannot be reached."""
    try:
        return await state.paused()
    except ServiceUnavailableError as err:
        logger.warning("dashboard: pause state unknown: %s", err.detail)
        return None


async def read_monitors(url: str) -> dict[str, Any]:
    """Return the monitors' health record, or `{"status": "unreachable", "error": ...}`."""
    try:
        async with httpx.AsyncClient(timeout=MONITORS_TIMEOUT_SECONDS) as client:
            response = await client.get(url)
        return response.json()
    except (httpx.HTTPError, ValueError) as err:
        logger.debug("dashboard: monitors health at %s unavailable: %r", url, err)
        return {"status": "unreachable", "error": f"{type(err).__name__}: {err}", "monitors": {}}


def cache_state(stats: dict[str, Any]) -> dict[str, Any]:
    """Return the odds cache counters with the hit ratio (None before the first lookup)."""
    lookups = stats["hits"] + stats["misses"]
    return {
        "strategy": stats.get("strategy"),
        "hits": stats["hits"],
        "misses": stats["misses"],
        "hit_ratio": None if lookups == 0 else round(stats["hits"] / lookups, 4),
    }
