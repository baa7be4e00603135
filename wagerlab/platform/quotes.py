"""Quotes the odds signer issues, and the check of a signed placeBet against its quote."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any, Protocol

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import AsyncWeb3

from wagerlab.chain.contracts import Quote, sign_quote
from wagerlab.platform import db
from wagerlab.platform.errors import ValidationError
from wagerlab.platform.nodecalls import read_from_node

logger = logging.getLogger(__name__)

NONCE_BITS = 128


class Clock(Protocol):
    """The time quotes are checked against, in Unix seconds."""

    async def now(self) -> int: ...


class ChainClock:
    """The timestamp of the node's latest block, the time the Sportsbook compares with.

    The node mines each transaction in its own block, and py-evm requires every block's
    timestamp to exceed its parent's, so under load the chain runs ahead of the wall clock
    (by more than ten minutes in one fight_night run). Quote expiry and market closing
    are therefore measured on the chain.
    """

    def __init__(self, w3: AsyncWeb3) -> None:
        self.w3 = w3

    async def now(self) -> int:
        block = await read_from_node("the latest block for the quote clock", lambda: self.w3.eth.get_block("latest"))
        return int(block["timestamp"])


class WallClock:
    """The local clock, for tests without a node."""

    async def now(self) -> int:
        return int(time.time())

QUOTE_FIELDS: tuple[tuple[str, str], ...] = (
    ("bettor", "bettor"),
    ("marketId", "market_id"),
    ("outcome", "outcome"),
    ("odds", "odds"),
    ("maxStake", "max_stake"),
    ("expiry", "expiry"),
    ("nonce", "nonce"),
)
"""The Solidity struct field and the API field of each part of a quote."""


def new_quote(bettor: ChecksumAddress, market_id: int, outcome: int, odds: int, stake: int, expiry: int) -> Quote:
    """Create a quote for exactly `stake`, valid until `expiry`, with a random nonce."""
    return Quote(
        bettor=bettor,
        market_id=market_id,
        outcome=outcome,
        odds=odds,
        max_stake=stake,
        expiry=expiry,
        nonce=secrets.randbits(NONCE_BITS),
    )


def sign(signer: LocalAccount, chain_id: int, sportsbook: str, quote: Quote) -> str:
    return sign_quote(signer, chain_id, sportsbook, quote)


def to_row(quote: Quote, user_id: int, signature: str) -> db.Quote:
    return db.Quote(
        nonce=str(quote.nonce),
        user_id=user_id,
        bettor=quote.bettor,
        market_id=quote.market_id,
        outcome=quote.outcome,
        odds=quote.odds,
        max_stake=quote.max_stake,
        expiry=quote.expiry,
        signature=signature,
    )


def to_json(quote: Quote) -> dict[str, Any]:
    return {
        "bettor": quote.bettor,
        "market_id": quote.market_id,
        "outcome": quote.outcome,
        "odds": quote.odds,
        "max_stake": quote.max_stake,
        "expiry": quote.expiry,
        "nonce": quote.nonce,
    }


def from_row(row: db.Quote) -> Quote:
    return Quote(
        bettor=row.bettor,  # type: ignore[arg-type]
        market_id=row.market_id,
        outcome=row.outcome,
        odds=row.odds,
        max_stake=row.max_stake,
        expiry=row.expiry,
        nonce=int(row.nonce),
    )


def check_bet_matches_quote(call_args: Mapping[str, Any], issued: db.Quote) -> None:
    """Raise ValidationError naming the first placeBet argument that differs from the issued quote."""
    sent = call_args["quote"]
    expected = to_json(from_row(issued))
    for solidity_name, api_name in QUOTE_FIELDS:
        got = sent[solidity_name]
        want = expected[api_name]
        if isinstance(want, str):
            got, want = str(got).lower(), want.lower()
        if got != want:
            detail = f"quote.{api_name} of the transaction is {got!r} but the platform issued {want!r}"
            raise ValidationError(detail, field=f"quote.{api_name}")

    signature = "0x" + bytes(call_args["signature"]).hex()
    if signature.lower() != issued.signature.lower():
        raise ValidationError("signature of the transaction is not the one the platform issued", field="signature")
    stake = call_args["stake"]
    if not 0 < stake <= issued.max_stake:
        raise ValidationError(f"stake must be between 1 and {issued.max_stake}, got {stake!r}", field="stake")
