"""The bets monitor: a `BetPlaced` log becomes an open `bets` row and moves its stake."""

from __future__ import annotations

from sqlmodel import Session

from wagerlab.platform.db import Bet, BetStatus
from wagerlab.platform.monitors.base import EventHandler, LogMonitor
from wagerlab.platform.monitors.events import DecodedEvent
from wagerlab.platform.monitors.ledger import Leg, available, staked, transfer


def apply_bet_placed(session: Session, event: DecodedEvent) -> list[Leg]:
    args = event.args
    bet = Bet(
        bet_id=args["betId"],
        bettor=args["bettor"],
        market_id=args["marketId"],
        outcome=args["outcome"],
        stake=args["stake"],
        odds=args["odds"],
        payout=args["payout"],
        nonce=str(args["nonce"]),
        status=BetStatus.OPEN,
        tx_hash=event.log.tx_hash,
        block_number=event.log.block_number,
    )
    # The chain is the source of truth, so a row some other writer made for this id takes its values.
    session.merge(bet)
    return transfer(available(args["bettor"]), staked(args["bettor"]), args["stake"])


def reverse_bet_placed(session: Session, event: DecodedEvent) -> None:
    bet = session.get(Bet, event.args["betId"])
    if bet is not None:
        session.delete(bet)


class BetsMonitor(LogMonitor):
    name = "bets"
    handlers = {"BetPlaced": EventHandler(apply=apply_bet_placed, reverse=reverse_bet_placed)}
