"""The deposits monitor: book balances moved in and out by `Deposited` and `Withdrawn`."""

from __future__ import annotations

from sqlmodel import Session

from wagerlab.platform.monitors.base import EventHandler, LogMonitor
from wagerlab.platform.monitors.events import DecodedEvent
from wagerlab.platform.monitors.ledger import Leg, available, transfer, wallet


def apply_deposited(_session: Session, event: DecodedEvent) -> list[Leg]:
    account = event.args["account"]
    return transfer(wallet(account), available(account), event.args["amount"])


def apply_withdrawn(_session: Session, event: DecodedEvent) -> list[Leg]:
    account = event.args["account"]
    return transfer(available(account), wallet(account), event.args["amount"])


def reverse_nothing(_session: Session, _event: DecodedEvent) -> None:
    """Reverse an event whose only effects are its ledger legs, which the monitor undoes."""


class DepositsMonitor(LogMonitor):
    name = "deposits"
    handlers = {
        "Deposited": EventHandler(apply=apply_deposited, reverse=reverse_nothing),
        "Withdrawn": EventHandler(apply=apply_withdrawn, reverse=reverse_nothing),
    }
