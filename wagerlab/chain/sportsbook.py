"""Typed reads of the Sportsbook's views: bets, markets and balances at one block.

Reconciliation (`wagerlab.platform.reconcile`) and a run's invariant checks
(`wagerlab.sim.invariants`) both compare the database with these values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from web3.contract import Contract
from web3.types import BlockIdentifier


@dataclass(frozen=True)
class ChainBet:
    """One bet as `Sportsbook.getBet` returns it."""

    bet_id: int
    bettor: str
    market_id: int
    outcome: int
    stake: int
    odds: int
    payout: int
    claimed: bool


@dataclass(frozen=True)
class ChainMarket:
    """One market as `Sportsbook.getMarket` returns it, without its closing time and liability cap."""

    market_id: int
    status: int
    outcome_count: int
    winning_outcome: int
    total_stake: int
    reserve: int


def read_bets(book: Contract, block: BlockIdentifier | None = None) -> dict[int, ChainBet]:
    """Read every bet on the Sportsbook at `block`, keyed by bet id.

    None reads at web3's default block, which is the latest one unless the caller changed it.
    """
    bets: dict[int, ChainBet] = {}
    for bet_id in range(1, book.functions.nextBetId().call(block_identifier=block)):
        bettor, market_id, outcome, stake, odds, payout, claimed = book.functions.getBet(bet_id).call(block_identifier=block)
        bets[bet_id] = ChainBet(bet_id, bettor, market_id, outcome, stake, odds, payout, claimed)
    return bets


def read_markets(book: Contract, market_ids: Iterable[int], block: BlockIdentifier | None = None) -> dict[int, ChainMarket]:
    """Read the markets `market_ids` at `block`, in ascending id order. An unknown id gets status 0."""
    markets: dict[int, ChainMarket] = {}
    for market_id in sorted(market_ids):
        status, outcome_count, _closes_at, _cap, winning, total_stake, reserve = book.functions.getMarket(market_id).call(block_identifier=block)
        markets[market_id] = ChainMarket(market_id, status, outcome_count, winning, total_stake, reserve)
    return markets


def read_balances(book: Contract, addresses: Iterable[str], block: BlockIdentifier | None = None) -> dict[str, int]:
    """Read the Sportsbook balance of each address at `block`, in the token's smallest unit."""
    return {address: book.functions.balanceOf(address).call(block_identifier=block) for address in sorted(addresses)}
