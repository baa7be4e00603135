"""The settlement monitor: market results, claims and refunds.

Each event waits until the bets monitor has finished the event's block, so a settlement
never misses a bet that was placed before it.
"""

from __future__ import annotations

import logging

from sqlmodel import Session, select

from wagerlab.platform.db import Bet, BetStatus, ChainEvent, Market, MarketStatus
from wagerlab.platform.monitors import cursor
from wagerlab.platform.monitors.base import EventHandler, LogMonitor
from wagerlab.platform.monitors.bets import BetsMonitor
from wagerlab.platform.monitors.errors import DependencyNotReadyError
from wagerlab.platform.monitors.events import DecodedEvent
from wagerlab.platform.monitors.ledger import HOUSE, Leg, available, staked, transfer

logger = logging.getLogger(__name__)

_NOT_STARTED = (-1, -1)


def require_bets_passed(session: Session, block_number: int) -> None:
    """Raise DependencyNotReadyError unless the bets monitor has finished `block_number`."""
    position = cursor.read_position(session, BetsMonitor.name, _NOT_STARTED)
    if not cursor.has_passed(position, block_number):
        raise DependencyNotReadyError(f"bets monitor is at {position}, not yet past block {block_number}")


def _market(session: Session, market_id: int, event_name: str) -> Market | None:
    market = session.get(Market, market_id)
    if market is None:
        logger.warning("%s names market %s, which has no row in markets; only its bets are updated", event_name, market_id)
    return market


def _bets_of(session: Session, market_id: int, statuses: tuple[BetStatus, ...]) -> list[Bet]:
    statement = select(Bet).where(Bet.market_id == market_id, Bet.status.in_(statuses)).order_by(Bet.bet_id)  # type: ignore[attr-defined]
    return list(session.exec(statement).all())


def _release_stakes(bets: list[Bet]) -> list[Leg]:
    """Move each bet's stake out of its bettor's staked balance to the house."""
    legs: list[Leg] = []
    for bet in bets:
        legs += transfer(staked(bet.bettor), HOUSE, bet.stake)
    return legs


# -- MarketSettled -- #


def apply_market_settled(session: Session, event: DecodedEvent) -> list[Leg]:
    """Settle the market and its open bets; the winners' payouts move on `BetClaimed`."""
    require_bets_passed(session, event.log.block_number)
    market_id = event.args["marketId"]
    winning_outcome = event.args["winningOutcome"]
    market = _market(session, market_id, event.name)
    if market is not None:
        market.status = MarketStatus.SETTLED
        market.winning_outcome = winning_outcome
        market.total_payout = event.args["totalPayout"]
        session.add(market)

    bets = _bets_of(session, market_id, (BetStatus.OPEN,))
    for bet in bets:
        bet.status = BetStatus.WON if bet.outcome == winning_outcome else BetStatus.LOST
        session.add(bet)
    return _release_stakes(bets)


def reverse_market_settled(session: Session, event: DecodedEvent) -> None:
    market_id = event.args["marketId"]
    _reopen_market(session, market_id)
    for bet in _bets_of(session, market_id, (BetStatus.WON, BetStatus.LOST)):
        bet.status = BetStatus.OPEN
        session.add(bet)


def _reopen_market(session: Session, market_id: int) -> None:
    """Put a market back to closed if a MarketClosed event for it was applied, else open."""
    market = session.get(Market, market_id)
    if market is None:
        return
    closed_events = session.exec(select(ChainEvent).where(ChainEvent.event == "MarketClosed")).all()
    was_closed = any(row.args.get("marketId") == market_id for row in closed_events)
    market.status = MarketStatus.CLOSED if was_closed else MarketStatus.OPEN
    market.winning_outcome = None
    market.total_payout = None
    session.add(market)


# -- MarketVoided -- #


def apply_market_voided(session: Session, event: DecodedEvent) -> list[Leg]:
    """Void the market and its open bets; each stake comes back on `BetRefunded`."""
    require_bets_passed(session, event.log.block_number)
    market_id = event.args["marketId"]
    market = _market(session, market_id, event.name)
    if market is not None:
        market.status = MarketStatus.VOIDED
        session.add(market)

    bets = _bets_of(session, market_id, (BetStatus.OPEN,))
    for bet in bets:
        bet.status = BetStatus.VOIDED
        session.add(bet)
    return _release_stakes(bets)


def reverse_market_voided(session: Session, event: DecodedEvent) -> None:
    market_id = event.args["marketId"]
    _reopen_market(session, market_id)
    for bet in _bets_of(session, market_id, (BetStatus.VOIDED,)):
        bet.status = BetStatus.OPEN
        session.add(bet)


# -- BetClaimed and BetRefunded -- #


def _bet_for(session: Session, event: DecodedEvent, expected: BetStatus) -> Bet:
    require_bets_passed(session, event.log.block_number)
    bet_id = event.args["betId"]
    bet = session.get(Bet, bet_id)
    if bet is None:
        raise DependencyNotReadyError(f"{event.name} names bet {bet_id}, which is not in the bets table yet")
    if bet.status != expected:
        logger.warning("%s of bet %s found it %s, expected %s; applying the chain's result", event.name, bet_id, bet.status.value, expected.value)
    return bet


def apply_bet_claimed(session: Session, event: DecodedEvent) -> list[Leg]:
    bet = _bet_for(session, event, BetStatus.WON)
    bet.status = BetStatus.CLAIMED
    session.add(bet)
    return transfer(HOUSE, available(event.args["bettor"]), event.args["payout"])


def reverse_bet_claimed(session: Session, event: DecodedEvent) -> None:
    _set_bet_status(session, event.args["betId"], BetStatus.WON)


def apply_bet_refunded(session: Session, event: DecodedEvent) -> list[Leg]:
    bet = _bet_for(session, event, BetStatus.VOIDED)
    bet.status = BetStatus.REFUNDED
    session.add(bet)
    return transfer(HOUSE, available(event.args["bettor"]), event.args["stake"])


def reverse_bet_refunded(session: Session, event: DecodedEvent) -> None:
    _set_bet_status(session, event.args["betId"], BetStatus.VOIDED)


def _set_bet_status(session: Session, bet_id: int, status: BetStatus) -> None:
    bet = session.get(Bet, bet_id)
    if bet is not None:
        bet.status = status
        session.add(bet)


# -- MarketClosed -- #


def apply_market_closed(session: Session, event: DecodedEvent) -> list[Leg]:
    require_bets_passed(session, event.log.block_number)
    market = session.get(Market, event.args["marketId"])
    if market is not None and market.status == MarketStatus.OPEN:
        market.status = MarketStatus.CLOSED
        session.add(market)
    return []


def reverse_market_closed(session: Session, event: DecodedEvent) -> None:
    market = session.get(Market, event.args["marketId"])
    if market is not None and market.status == MarketStatus.CLOSED:
        market.status = MarketStatus.OPEN
        session.add(market)


class SettlementMonitor(LogMonitor):
    name = "settlement"
    handlers = {
        "MarketClosed": EventHandler(apply=apply_market_closed, reverse=reverse_market_closed),
        "MarketSettled": EventHandler(apply=apply_market_settled, reverse=reverse_market_settled),
        "MarketVoided": EventHandler(apply=apply_market_voided, reverse=reverse_market_voided),
        "BetClaimed": EventHandler(apply=apply_bet_claimed, reverse=reverse_bet_claimed),
        "BetRefunded": EventHandler(apply=apply_bet_refunded, reverse=reverse_bet_refunded),
    }
