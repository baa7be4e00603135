"""The typed reads of `wagerlab.chain.sportsbook` against a deployed Sportsbook, at the latest and at past blocks."""

from __future__ import annotations

from wagerlab.chain.sportsbook import ChainBet, ChainMarket, read_balances, read_bets, read_markets
from wagerlab.odds import payout

from .harness import BETTOR_DEPOSIT, MARKET_ID, Chain


def test_read_bets_without_bets(chain: Chain) -> None:
    assert read_bets(chain.book) == {}


def test_read_bets_latest_and_past(chain: Chain, market: int) -> None:
    alice, bob = chain.bettors[:2]
    chain.place(alice, 4_000, outcome=0, odds=2_500_000)
    after_first = chain.w3.eth.block_number
    chain.place(bob, 3_000, outcome=1, odds=1_600_000)

    latest = read_bets(chain.book)
    past = read_bets(chain.book, after_first)

    assert latest == {
        1: ChainBet(1, alice.address, market, 0, 4_000, 2_500_000, payout(4_000, 2_500_000), False),
        2: ChainBet(2, bob.address, market, 1, 3_000, 1_600_000, payout(3_000, 1_600_000), False),
    }
    assert past == {1: latest[1]}


def test_read_markets_order_and_unknown(chain: Chain, market: int) -> None:
    chain.place(chain.bettors[0], 4_000, outcome=0, odds=2_500_000)
    on_chain = chain.market(market)

    markets = read_markets(chain.book, {99, market})

    assert list(markets) == [market, 99]
    assert markets[market] == ChainMarket(market, 1, 2, 0, 4_000, on_chain["reserve"])
    assert markets[99] == ChainMarket(99, 0, 0, 0, 0, 0)


def test_read_markets_past_block(chain: Chain) -> None:
    before = chain.w3.eth.block_number
    chain.create_market()

    assert read_markets(chain.book, [MARKET_ID], before)[MARKET_ID].status == 0
    assert read_markets(chain.book, [MARKET_ID])[MARKET_ID].status == 1


def test_read_balances_latest_and_past(chain: Chain) -> None:
    alice, bob = chain.bettors[:2]
    before = chain.w3.eth.block_number
    chain.send(alice, chain.book.functions.withdraw(1_000))

    latest = read_balances(chain.book, [bob.address, alice.address])
    past = read_balances(chain.book, [alice.address], before)

    assert latest == {alice.address: BETTOR_DEPOSIT - 1_000, bob.address: BETTOR_DEPOSIT}
    assert list(latest) == sorted([alice.address, bob.address])
    assert past == {alice.address: BETTOR_DEPOSIT}
