"""Double-entry legs and the account balances they move.

An event's effects on balances are its ledger legs: a leg on `available:ADDRESS` or
`staked:ADDRESS` changes that column of the address's `accounts` row, while legs on
`wallet:ADDRESS` (tokens outside the book) and `house` have no row. Reversing an event
applies the same legs negated, so apply and reverse cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from wagerlab.platform.db import Account, LedgerEntry
from wagerlab.platform.monitors.errors import LedgerImbalanceError

HOUSE = "house"


def available(address: str) -> str:
    return f"available:{address}"


def staked(address: str) -> str:
    return f"staked:{address}"


def wallet(address: str) -> str:
    return f"wallet:{address}"


@dataclass(frozen=True)
class Leg:
    """One side of a double entry: `amount` added to `account` (negative to take away)."""

    account: str
    amount: int


def transfer(source: str, target: str, amount: int) -> list[Leg]:
    """Return the two legs that move `amount` from `source` to `target`."""
    return [Leg(source, -amount), Leg(target, amount)]


def check_balanced(event_name: str, legs: Sequence[Leg]) -> None:
    total = sum(leg.amount for leg in legs)
    if total != 0:
        raise LedgerImbalanceError(f"ledger legs of {event_name} sum to {total}, expected 0: {legs!r}")


def write_legs(session: Session, event_id: int, legs: Sequence[Leg]) -> None:
    """Insert the legs of one event and move the account balances they name."""
    for leg in legs:
        session.add(LedgerEntry(event_id=event_id, account=leg.account, amount=leg.amount))
        _move_balance(session, leg.account, leg.amount)


def write_correction_legs(session: Session, correction_id: int, legs: Sequence[Leg]) -> None:
    """Insert the legs of one reconciliation correction and move the balances they name."""
    check_balanced(f"correction {correction_id}", legs)
    for leg in legs:
        session.add(LedgerEntry(correction_id=correction_id, account=leg.account, amount=leg.amount))
        _move_balance(session, leg.account, leg.amount)


def reverse_legs(session: Session, event_id: int) -> list[Leg]:
    """Delete the legs of one event and undo their balance moves; return the deleted legs."""
    rows = session.exec(select(LedgerEntry).where(LedgerEntry.event_id == event_id)).all()
    legs = [Leg(row.account, row.amount) for row in rows]
    for leg in legs:
        _move_balance(session, leg.account, -leg.amount)
    session.execute(delete(LedgerEntry).where(LedgerEntry.event_id == event_id))
    return legs


def _move_balance(session: Session, account: str, amount: int) -> None:
    kind, _, address = account.partition(":")
    if kind in ("available", "staked"):
        add_to_account(session, address, **{kind: amount})


def add_to_account(session: Session, address: str, *, available: int = 0, staked: int = 0) -> None:
    """Add to an address's balances in one atomic upsert, creating its row if absent."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Account).values(address=address, available=available, staked=staked)
    statement = statement.on_conflict_do_update(
        index_elements=[Account.address],
        set_={
            "available": Account.available + available,
            "staked": Account.staked + staked,
        },
    )
    session.execute(statement)
