"""The deposits monitor: book balances moved in and out by `Deposited` and `Withdrawn`."""

from __future__ import annotations

import logging

from sqlmodel import Session

from wagerlab.platform.db import Account
from wagerlab.platform.monitors.base import EventHandler, LogMonitor
from wagerlab.platform.monitors.events import DecodedEvent
from wagerlab.platform.monitors.ledger import Leg, available, transfer, wallet

logger = logging.getLogger(__name__)


def apply_deposited(_session: Session, event: DecodedEvent) -> list[Leg]:
    account = event.args["account"]
    return transfer(wallet(account), available(account), event.args["amount"])


def apply_withdrawn(_session: Session, event: DecodedEvent) -> list[Leg]:
    account = event.args["account"]
    return transfer(available(account), wallet(account), event.args["amount"])


def reverse_deposited(session: Session, event: DecodedEvent) -> None:
    """Check a deposit a reorg removed; the monitor then undoes its legs, taking the amount back.

    When the bettor already spent the deposit, taking it back leaves `available` negative
    in the database, as on the chain's new branch the deposit never happened. That is
    logged as an error, because the platform has paid out or accepted bets against it.
    """
    account, amount = event.args["account"], event.args["amount"]
    row = session.get(Account, account)
    current = row.available if row is not None else 0
    if current < amount:
        logger.error(
            "reorg removed deposit %s:%s of %s to %s after it was spent: available becomes %s",
            event.log.tx_hash, event.log.log_index, amount, account, current - amount,
        )
    else:
        logger.warning("reorg removed deposit %s:%s of %s to %s; taking it back", event.log.tx_hash, event.log.log_index, amount, account)


def reverse_withdrawn(_session: Session, event: DecodedEvent) -> None:
    """Log a withdrawal a reorg removed; the monitor undoes its legs, crediting the amount again."""
    logger.warning(
        "reorg removed withdrawal %s:%s of %s by %s; crediting it again",
        event.log.tx_hash, event.log.log_index, event.args["amount"], event.args["account"],
    )


class DepositsMonitor(LogMonitor):
    name = "deposits"
    handlers = {
        "Deposited": EventHandler(apply=apply_deposited, reverse=reverse_deposited),
        "Withdrawn": EventHandler(apply=apply_withdrawn, reverse=reverse_withdrawn),
    }
