"""Sportsbook: deposits, withdrawals, quotes and the reserve taken for each bet."""

from __future__ import annotations

import re

import pytest
from eth_account import Account
from eth_keys import keys

from wagerlab.chain.accounts import dev_account
from wagerlab.chain.contracts import quote_digest

from .harness import BETTOR_DEPOSIT, HOUSE_FUNDING, MARKET_CAP, Chain

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


# ---------------------------------------------------------------- deposits


def test_deposit_credits_book_balance(chain: Chain) -> None:
    account = chain.roles.funder
    chain.send(account, chain.token.functions.faucet(5_000))
    chain.send(account, chain.token.functions.approve(chain.deployment.sportsbook, 5_000))

    receipt = chain.send(account, chain.book.functions.deposit(3_000))

    assert chain.events(receipt, chain.book, "Deposited") == [{"account": account.address, "amount": 3_000}]
    assert chain.book.functions.balanceOf(account.address).call() == 3_000
    assert chain.token.functions.balanceOf(account.address).call() == 2_000


def test_deposit_without_allowance_reverts(chain: Chain) -> None:
    account = chain.roles.funder
    chain.send(account, chain.token.functions.faucet(5_000))

    error = chain.revert_of(account, chain.book.functions.deposit(1))

    assert error == f"ERC20InsufficientAllowance(spender={chain.deployment.sportsbook}, allowance=0, needed=1)"


def test_deposit_above_token_balance_reverts(chain: Chain) -> None:
    bettor = chain.bettors[0]
    error = chain.revert_of(bettor, chain.book.functions.deposit(1))
    assert error == f"ERC20InsufficientBalance(sender={bettor.address}, balance=0, needed=1)"


@pytest.mark.parametrize("function", ["deposit", "withdraw"])
def test_zero_amount_reverts(chain: Chain, function: str) -> None:
    error = chain.revert_of(chain.bettors[0], chain.book.functions[function](0))
    assert error == "SportsbookZeroAmount()"


def test_withdraw_sends_tokens(chain: Chain) -> None:
    bettor = chain.bettors[0]

    receipt = chain.send(bettor, chain.book.functions.withdraw(1_234))

    assert chain.events(receipt, chain.book, "Withdrawn") == [{"account": bettor.address, "amount": 1_234}]
    assert chain.book.functions.balanceOf(bettor.address).call() == BETTOR_DEPOSIT - 1_234
    assert chain.token.functions.balanceOf(bettor.address).call() == 1_234


def test_withdraw_above_balance_reverts(chain: Chain) -> None:
    bettor = chain.bettors[0]
    error = chain.revert_of(bettor, chain.book.functions.withdraw(BETTOR_DEPOSIT + 1))
    expected = f"SportsbookInsufficientBalance(account={bettor.address}, balance={BETTOR_DEPOSIT}, needed={BETTOR_DEPOSIT + 1})"
    assert error == expected


# ---------------------------------------------------------------- placing a bet


def test_place_bet_records_bet(chain: Chain, market: int) -> None:
    bettor = chain.bettors[0]
    quote = chain.quote(bettor, outcome=1, odds=2_500_000, max_stake=5_000)

    receipt = chain.send(bettor, chain.place_call(quote, 4_000))

    assert chain.events(receipt, chain.book, "BetPlaced") == [
        {
            "betId": 1,
            "bettor": bettor.address,
            "marketId": market,
            "outcome": 1,
            "stake": 4_000,
            "odds": 2_500_000,
            "payout": 10_000,
            "nonce": quote.nonce,
        }
    ]
    assert chain.book.functions.getBet(1).call() == [bettor.address, market, 1, 4_000, 2_500_000, 10_000, False]
    assert chain.book.functions.balanceOf(bettor.address).call() == BETTOR_DEPOSIT - 4_000
    assert chain.book.functions.quoteNonceUsed(quote.nonce).call() is True
    assert chain.book.functions.nextBetId().call() == 2
    assert chain.book.functions.outcomePayout(market, 1).call() == 10_000
    assert chain.market(market)["total_stake"] == 4_000


def test_bet_ids_count_up(chain: Chain, market: int) -> None:
    first = chain.place(chain.bettors[0], 100)
    second = chain.place(chain.bettors[1], 100)

    assert chain.events(first, chain.book, "BetPlaced")[0]["betId"] == 1
    assert chain.events(second, chain.book, "BetPlaced")[0]["betId"] == 2


def test_get_bet_unknown_reverts(chain: Chain) -> None:
    for bet_id in (0, 1):
        error = chain.revert_of(chain.bettors[0], chain.book.functions.getBet(bet_id))
        assert error == f"SportsbookBetNotFound(betId={bet_id})"


def test_hash_quote_matches_python(chain: Chain) -> None:
    quote = chain.quote(chain.bettors[0], outcome=1, odds=3_141_592, max_stake=77, expiry=2**63, nonce=2**255)

    on_chain = chain.book.functions.hashQuote(quote.as_tuple()).call()

    assert on_chain == quote_digest(chain.deployment.chain_id, chain.deployment.sportsbook, quote)


def test_quote_signature_recovers_signer(chain: Chain) -> None:
    quote = chain.quote(chain.bettors[0])
    digest = quote_digest(chain.deployment.chain_id, chain.deployment.sportsbook, quote)

    recovered = Account._recover_hash(digest, signature=bytes.fromhex(chain.sign(quote)[2:]))

    assert recovered == chain.roles.odds_signer.address


# ---------------------------------------------------------------- quote checks


def test_quote_replay_reverts(chain: Chain, market: int) -> None:
    bettor = chain.bettors[0]
    quote = chain.quote(bettor)
    chain.send(bettor, chain.place_call(quote, 100))

    error = chain.mined_revert_of(bettor, chain.place_call(quote, 100))

    assert error == f"SportsbookQuoteNonceUsed(nonce={quote.nonce})"
    assert chain.book.functions.nextBetId().call() == 2


def test_nonce_is_global_across_bettors(chain: Chain, market: int) -> None:
    first, second = chain.bettors[0], chain.bettors[1]
    chain.place(first, 100, nonce=424242)

    error = chain.revert_of(second, chain.place_call(chain.quote(second, nonce=424242), 100))

    assert error == "SportsbookQuoteNonceUsed(nonce=424242)"


def test_quote_for_other_bettor_reverts(chain: Chain, market: int) -> None:
    owner, thief = chain.bettors[0], chain.bettors[1]
    quote = chain.quote(owner)

    error = chain.mined_revert_of(thief, chain.place_call(quote, 100))

    assert error == f"SportsbookWrongBettor(bettor={owner.address}, caller={thief.address})"


def test_expired_quote_reverts(chain: Chain, market: int) -> None:
    bettor = chain.bettors[0]
    expiry = chain.now() + 10
    quote = chain.quote(bettor, expiry=expiry)
    chain.travel_to(expiry + 1)

    error = chain.mined_revert_of(bettor, chain.place_call(quote, 100))

    match = re.fullmatch(rf"SportsbookQuoteExpired\(expiry={expiry}, now=(\d+)\)", error)
    assert match is not None, error
    assert int(match.group(1)) > expiry


def test_quote_valid_at_expiry(chain: Chain, market: int) -> None:
    bettor = chain.bettors[0]
    expiry = chain.now() + 10
    quote = chain.quote(bettor, expiry=expiry)
    chain.w3.testing.timeTravel(expiry)

    receipt = chain.send(bettor, chain.place_call(quote, 100))

    assert chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"] == expiry


@pytest.mark.parametrize(
    "field, value",
    [("odds", 9_000_000), ("max_stake", 10**18), ("outcome", 1), ("expiry", 2**60), ("market_id", 2)],
)
def test_tampered_quote_reverts(chain: Chain, market: int, field: str, value: int) -> None:
    bettor = chain.bettors[0]
    chain.create_market(market_id=2)
    quote = chain.quote(bettor)
    signature = chain.sign(quote)
    tampered = quote.__class__(**{**quote.__dict__, field: value})

    error = chain.revert_of(bettor, chain.place_call(tampered, 100, signature))

    match = re.fullmatch(r"SportsbookInvalidSignature\(recovered=(0x[0-9a-fA-F]{40}), expected=(0x[0-9a-fA-F]{40})\)", error)
    assert match is not None, error
    assert match.group(1) != chain.roles.odds_signer.address
    assert match.group(2) == chain.roles.odds_signer.address


def test_quote_signed_by_other_key_reverts(chain: Chain, market: int) -> None:
    bettor, impostor = chain.bettors[0], dev_account(9)
    quote = chain.quote(bettor)

    error = chain.revert_of(bettor, chain.place_call(quote, 100, chain.sign(quote, signer=impostor)))

    assert error == f"SportsbookInvalidSignature(recovered={impostor.address}, expected={chain.roles.odds_signer.address})"


def _malleable_twin(signature: str) -> str:
    """Return the other valid signature of the same digest: s -> n - s, v flipped."""
    raw = bytes.fromhex(signature[2:])
    r, s, v = raw[:32], int.from_bytes(raw[32:64], "big"), raw[64]
    twin = r + (CURVE_ORDER - s).to_bytes(32, "big") + bytes([55 - v])
    return "0x" + twin.hex()


def _with_v(signature: str, v: int) -> str:
    return signature[:-2] + f"{v:02x}"


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(_malleable_twin, id="high-s"),
        pytest.param(lambda sig: _with_v(sig, int(sig[-2:], 16) - 27), id="v-0-or-1"),
        pytest.param(lambda sig: _with_v(sig, 29), id="v-29"),
        pytest.param(lambda sig: sig[:-2], id="64-bytes"),
        pytest.param(lambda sig: sig + "00", id="66-bytes"),
        pytest.param(lambda sig: "0x", id="empty"),
    ],
)
def test_malformed_signature_reverts(chain: Chain, market: int, mangle: object) -> None:
    bettor = chain.bettors[0]
    quote = chain.quote(bettor)

    error = chain.revert_of(bettor, chain.place_call(quote, 100, mangle(chain.sign(quote))))  # type: ignore[operator]

    assert error == f"SportsbookInvalidSignature(recovered={ZERO_ADDRESS}, expected={chain.roles.odds_signer.address})"


def test_malleable_twin_recovers_signer(chain: Chain) -> None:
    """The high-s signature the contract rejects is a valid signature by the odds signer."""
    quote = chain.quote(chain.bettors[0])
    digest = quote_digest(chain.deployment.chain_id, chain.deployment.sportsbook, quote)
    twin = bytes.fromhex(_malleable_twin(chain.sign(quote))[2:])

    vrs = keys.Signature(vrs=(twin[64] - 27, int.from_bytes(twin[:32], "big"), int.from_bytes(twin[32:64], "big")))

    assert vrs.recover_public_key_from_msg_hash(digest).to_checksum_address() == chain.roles.odds_signer.address


# ---------------------------------------------------------------- bet terms


def test_zero_stake_reverts(chain: Chain, market: int) -> None:
    bettor = chain.bettors[0]
    assert chain.revert_of(bettor, chain.place_call(chain.quote(bettor), 0)) == "SportsbookZeroAmount()"


def test_stake_above_quote_reverts(chain: Chain, market: int) -> None:
    bettor = chain.bettors[0]
    quote = chain.quote(bettor, max_stake=500)
    assert chain.revert_of(bettor, chain.place_call(quote, 501)) == "SportsbookStakeAboveQuote(stake=501, maxStake=500)"


@pytest.mark.parametrize("odds", [0, 999_999, 1_000_000])
def test_odds_at_most_scale_revert(chain: Chain, market: int, odds: int) -> None:
    bettor = chain.bettors[0]
    error = chain.revert_of(bettor, chain.place_call(chain.quote(bettor, odds=odds), 100))
    assert error == f"SportsbookInvalidOdds(odds={odds})"


def test_outcome_out_of_range_reverts(chain: Chain, market: int) -> None:
    bettor = chain.bettors[0]
    error = chain.revert_of(bettor, chain.place_call(chain.quote(bettor, outcome=2), 100))
    assert error == f"SportsbookInvalidOutcome(marketId={market}, outcome=2, outcomeCount=2)"


def test_bet_on_unknown_market_reverts(chain: Chain) -> None:
    bettor = chain.bettors[0]
    error = chain.revert_of(bettor, chain.place_call(chain.quote(bettor, market_id=42), 100))
    assert error == "SportsbookMarketNotFound(marketId=42)"


def test_bet_on_closed_market_reverts(chain: Chain, market: int) -> None:
    bettor = chain.bettors[0]
    chain.send(chain.roles.operator, chain.book.functions.closeMarket(market))

    error = chain.mined_revert_of(bettor, chain.place_call(chain.quote(bettor), 100))

    assert error == f"SportsbookMarketNotOpen(marketId={market}, status=2)"


def test_bet_after_closing_time_reverts(chain: Chain, market: int) -> None:
    bettor = chain.bettors[0]
    closes_at = chain.market(market)["closes_at"]
    quote = chain.quote(bettor, expiry=closes_at + 100)
    chain.w3.testing.timeTravel(closes_at)

    error = chain.mined_revert_of(bettor, chain.place_call(quote, 100))

    match = re.fullmatch(rf"SportsbookBettingClosed\(marketId={market}, closesAt={closes_at}, now=(\d+)\)", error)
    assert match is not None, error
    assert int(match.group(1)) >= closes_at


def test_stake_above_book_balance_reverts(chain: Chain, market: int) -> None:
    bettor = chain.bettors[0]
    stake = BETTOR_DEPOSIT + 1

    error = chain.revert_of(bettor, chain.place_call(chain.quote(bettor, max_stake=stake), stake))

    assert error == f"SportsbookInsufficientBalance(account={bettor.address}, balance={BETTOR_DEPOSIT}, needed={stake})"


# ---------------------------------------------------------------- reserve and liability


def _model_reserve(bets: list[tuple[int, int, int]], outcome_count: int) -> int:
    """Reserve of a market after `bets` of (outcome, stake, odds), computed independently."""
    total_stake = sum(stake for _, stake, _ in bets)
    payout_sums = [sum(stake * odds // 1_000_000 for o, stake, odds in bets if o == outcome) for outcome in range(outcome_count)]
    return max(0, max(payout_sums) - total_stake)


def test_reserve_follows_worst_case(chain: Chain, market: int) -> None:
    """Each row: a bet, then the market's reserve and the house balance after it."""
    bettor = chain.bettors[0]
    steps = [
        # (outcome, stake, odds, expected reserve)
        (0, 100, 2_500_000, 150),  # payouts [250, 0], stakes 100
        (1, 100, 2_000_000, 50),  # payouts [250, 200], stakes 200: the reserve shrinks
        (1, 300, 1_500_000, 150),  # payouts [250, 650], stakes 500
        (0, 1_000, 1_100_000, 0),  # payouts [1350, 650], stakes 1500: stakes cover all
        (0, 7, 3_333_333, 0),  # payout 23 rounded down from 23.33
    ]
    placed: list[tuple[int, int, int]] = []

    for outcome, stake, odds, reserve in steps:
        chain.place(bettor, stake, outcome=outcome, odds=odds)
        placed.append((outcome, stake, odds))

        assert reserve == _model_reserve(placed, 2)
        assert chain.market(market)["reserve"] == reserve
        assert chain.book.functions.houseBalance().call() == HOUSE_FUNDING - reserve

    assert chain.market(market)["total_stake"] == 1_507
    assert chain.book.functions.outcomePayout(market, 0).call() == 250 + 1_100 + 23
    assert chain.book.functions.outcomePayout(market, 1).call() == 650


def test_reserve_up_to_cap_accepted(chain: Chain) -> None:
    chain.create_market(cap=2_000)

    chain.place(chain.bettors[0], 1_000, odds=3_000_000)

    assert chain.market()["reserve"] == 2_000


def test_reserve_above_cap_reverts(chain: Chain) -> None:
    bettor = chain.bettors[0]
    chain.create_market(cap=1_999)

    error = chain.revert_of(bettor, chain.place_call(chain.quote(bettor, odds=3_000_000), 1_000))

    assert error == "SportsbookLiabilityCapExceeded(marketId=1, reserve=2000, cap=1999)"


def test_bet_lowering_reserve_passes_full_cap(chain: Chain) -> None:
    """A market at its cap still takes bets that lower the worst case."""
    chain.create_market(cap=2_000)
    chain.place(chain.bettors[0], 1_000, odds=3_000_000, outcome=0)

    chain.place(chain.bettors[1], 1_000, odds=1_500_000, outcome=1)

    assert chain.market()["reserve"] == 1_000
    assert chain.book.functions.houseBalance().call() == HOUSE_FUNDING - 1_000


def test_reserve_above_house_balance_reverts(chain: Chain, market: int) -> None:
    bettor = chain.bettors[0]
    chain.send(chain.roles.operator, chain.book.functions.withdrawHouse(HOUSE_FUNDING - 1_500))

    error = chain.revert_of(bettor, chain.place_call(chain.quote(bettor, odds=3_000_000), 1_000))

    assert error == "SportsbookInsufficientHouseBalance(balance=1500, needed=2000)"


def test_reserve_delta_uses_previous_reserve(chain: Chain, market: int) -> None:
    """Only the increase of the reserve must fit in the free house balance."""
    bettor = chain.bettors[0]
    chain.place(bettor, 1_000, odds=2_000_000)  # payouts 2000, stakes 1000: reserve 1000
    chain.send(chain.roles.operator, chain.book.functions.withdrawHouse(HOUSE_FUNDING - 2_000))

    chain.place(bettor, 500, odds=3_000_000)  # payouts 3500, stakes 1500: reserve 2000

    assert chain.market(market)["reserve"] == 2_000
    assert chain.book.functions.houseBalance().call() == 0
    error = chain.revert_of(bettor, chain.place_call(chain.quote(bettor, odds=3_000_000), 1))
    assert error == "SportsbookInsufficientHouseBalance(balance=0, needed=2)"


def test_default_cap_allows_large_bets(chain: Chain, market: int) -> None:
    chain.place(chain.bettors[0], BETTOR_DEPOSIT, odds=10_000_000)
    assert chain.market(market)["reserve"] == 9 * BETTOR_DEPOSIT
    assert 9 * BETTOR_DEPOSIT <= MARKET_CAP
