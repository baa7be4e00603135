"""Fixed-point odds and the one payout rounding rule shared with the Sportsbook contract."""

from typing import NewType

TokenAmount = NewType("TokenAmount", int)
"""An amount in the token's smallest unit (WagerToken has 6 decimals)."""

ODDS_SCALE = 1_000_000
"""Decimal odds are stored as integers scaled by this factor: 2_500_000 means 2.5."""

TOKEN_DECIMALS = 6
ONE_TOKEN = TokenAmount(10**TOKEN_DECIMALS)

MAX_DB_AMOUNT = 2**63 - 1
"""The largest amount a 64-bit database column holds."""


def payout(stake: int, odds: int) -> TokenAmount:
    """Return the payout of a winning bet, rounded down as the contract does."""
    if stake < 0:
        raise ValueError(f"stake must not be negative, got {stake!r}")
    if odds <= ODDS_SCALE:
        raise ValueError(f"odds must be greater than {ODDS_SCALE}, got {odds!r}")
    return TokenAmount(stake * odds // ODDS_SCALE)


def decimal_odds_to_fixed(text: str) -> int:
    """Convert decimal odds written as text ("2.5") to fixed point without floats."""
    whole, _, fraction = text.strip().partition(".")
    if not whole.isdigit() or (fraction and not fraction.isdigit()) or len(fraction) > 6:
        raise ValueError(f"odds must look like 2.5 with at most 6 decimals, got {text!r}")
    return int(whole) * ODDS_SCALE + int(fraction.ljust(6, "0") or "0")
