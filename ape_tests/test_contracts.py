"""The contracts through ape: deployment, token transfers, deposits and the pause switch.

The main suite (tests/contracts) covers the contracts in depth on wagerlab's own node;
these show the same contracts working from an ape project.
"""

import ape

FAUCET_AMOUNT = 1_000_000_000  # 1,000 tokens of 6 decimals


def test_token_faucet_and_transfer(token, bettor, accounts):
    token.faucet(FAUCET_AMOUNT, sender=bettor)
    token.transfer(accounts[4], 250, sender=bettor)

    assert token.balanceOf(bettor) == FAUCET_AMOUNT - 250
    assert token.balanceOf(accounts[4]) == 250
    assert token.totalSupply() == FAUCET_AMOUNT


def test_token_transfer_above_balance_reverts(token, bettor, accounts):
    with ape.reverts(token.ERC20InsufficientBalance, sender=bettor.address, balance=0, needed=1):
        token.transfer(accounts[4], 1, sender=bettor)


def test_token_faucet_limit(token, bettor):
    limit = token.FAUCET_LIMIT()
    with ape.reverts(token.WagerTokenFaucetLimitExceeded, requested=limit + 1, limit=limit):
        token.faucet(limit + 1, sender=bettor)


def test_deposit_credits_book_balance(token, book, bettor):
    token.faucet(FAUCET_AMOUNT, sender=bettor)
    token.approve(book.address, FAUCET_AMOUNT, sender=bettor)

    receipt = book.deposit(FAUCET_AMOUNT, sender=bettor)

    assert book.balanceOf(bettor) == FAUCET_AMOUNT
    assert token.balanceOf(book.address) == FAUCET_AMOUNT
    assert [log.amount for log in book.Deposited.from_receipt(receipt)] == [FAUCET_AMOUNT]


def test_pause_stops_deposits(token, book, bettor, guardian):
    book.pause(sender=guardian)
    token.faucet(FAUCET_AMOUNT, sender=bettor)
    token.approve(book.address, FAUCET_AMOUNT, sender=bettor)

    assert book.paused()
    with ape.reverts(book.SportsbookEnforcedPause):
        book.deposit(FAUCET_AMOUNT, sender=bettor)


def test_pause_only_by_guardian(book, bettor, guardian):
    with ape.reverts(book.SportsbookUnauthorized, caller=bettor.address, expected=guardian.address):
        book.pause(sender=bettor)
