"""WagerToken: ERC-20 behaviour, the faucet limit and the minter."""

from __future__ import annotations

from .harness import MAX_UINT256, Chain

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
FAUCET_LIMIT = 10_000_000_000


def test_token_metadata(chain: Chain) -> None:
    token = chain.token.functions
    assert token.name().call() == "Wager Token"
    assert token.symbol().call() == "WAGER"
    assert token.decimals().call() == 6
    assert token.FAUCET_LIMIT().call() == FAUCET_LIMIT
    assert token.minter().call() == chain.roles.operator.address


def test_faucet_mints_to_caller(chain: Chain) -> None:
    account = chain.roles.funder
    supply_before = chain.token.functions.totalSupply().call()

    receipt = chain.send(account, chain.token.functions.faucet(FAUCET_LIMIT))

    assert chain.token.functions.balanceOf(account.address).call() == FAUCET_LIMIT
    assert chain.token.functions.totalSupply().call() == supply_before + FAUCET_LIMIT
    assert chain.events(receipt, chain.token, "Transfer") == [
        {"from": ZERO_ADDRESS, "to": account.address, "value": FAUCET_LIMIT}
    ]


def test_faucet_above_limit_reverts(chain: Chain) -> None:
    call = chain.token.functions.faucet(FAUCET_LIMIT + 1)
    error = chain.revert_of(chain.roles.funder, call)
    assert error == f"WagerTokenFaucetLimitExceeded(requested={FAUCET_LIMIT + 1}, limit={FAUCET_LIMIT})"


def test_mint_by_minter_exceeds_faucet_limit(chain: Chain) -> None:
    receiver = chain.roles.funder.address
    amount = 50 * FAUCET_LIMIT

    chain.send(chain.roles.operator, chain.token.functions.mint(receiver, amount))

    assert chain.token.functions.balanceOf(receiver).call() == amount


def test_mint_by_other_account_reverts(chain: Chain) -> None:
    caller = chain.roles.funder
    error = chain.revert_of(caller, chain.token.functions.mint(caller.address, 1))
    assert error == f"WagerTokenUnauthorized(caller={caller.address})"


def test_mint_to_zero_address_reverts(chain: Chain) -> None:
    error = chain.revert_of(chain.roles.operator, chain.token.functions.mint(ZERO_ADDRESS, 1))
    assert error == f"ERC20InvalidReceiver(receiver={ZERO_ADDRESS})"


def test_transfer_moves_balance(chain: Chain) -> None:
    sender, receiver = chain.roles.funder, chain.roles.guardian
    chain.send(sender, chain.token.functions.faucet(1_000))

    receipt = chain.send(sender, chain.token.functions.transfer(receiver.address, 400))

    assert chain.token.functions.balanceOf(sender.address).call() == 600
    assert chain.token.functions.balanceOf(receiver.address).call() == 400
    assert chain.events(receipt, chain.token, "Transfer") == [
        {"from": sender.address, "to": receiver.address, "value": 400}
    ]


def test_transfer_above_balance_reverts(chain: Chain) -> None:
    sender = chain.roles.funder
    chain.send(sender, chain.token.functions.faucet(100))

    error = chain.revert_of(sender, chain.token.functions.transfer(chain.roles.guardian.address, 101))

    assert error == f"ERC20InsufficientBalance(sender={sender.address}, balance=100, needed=101)"


def test_transfer_to_zero_address_reverts(chain: Chain) -> None:
    sender = chain.roles.funder
    chain.send(sender, chain.token.functions.faucet(100))

    error = chain.revert_of(sender, chain.token.functions.transfer(ZERO_ADDRESS, 1))

    assert error == f"ERC20InvalidReceiver(receiver={ZERO_ADDRESS})"


def test_transfer_from_spends_allowance(chain: Chain) -> None:
    owner, spender = chain.roles.funder, chain.roles.guardian
    chain.send(owner, chain.token.functions.faucet(1_000))
    approval = chain.send(owner, chain.token.functions.approve(spender.address, 300))

    chain.send(spender, chain.token.functions.transferFrom(owner.address, spender.address, 200))

    assert chain.events(approval, chain.token, "Approval") == [
        {"owner": owner.address, "spender": spender.address, "value": 300}
    ]
    assert chain.token.functions.allowance(owner.address, spender.address).call() == 100
    assert chain.token.functions.balanceOf(spender.address).call() == 200


def test_transfer_from_above_allowance_reverts(chain: Chain) -> None:
    owner, spender = chain.roles.funder, chain.roles.guardian
    chain.send(owner, chain.token.functions.faucet(1_000))
    chain.send(owner, chain.token.functions.approve(spender.address, 300))

    call = chain.token.functions.transferFrom(owner.address, spender.address, 301)
    error = chain.revert_of(spender, call)

    assert error == f"ERC20InsufficientAllowance(spender={spender.address}, allowance=300, needed=301)"


def test_max_allowance_not_decreased(chain: Chain) -> None:
    owner, spender = chain.roles.funder, chain.roles.guardian
    chain.send(owner, chain.token.functions.faucet(1_000))
    chain.send(owner, chain.token.functions.approve(spender.address, MAX_UINT256))

    chain.send(spender, chain.token.functions.transferFrom(owner.address, spender.address, 1_000))

    assert chain.token.functions.allowance(owner.address, spender.address).call() == MAX_UINT256
