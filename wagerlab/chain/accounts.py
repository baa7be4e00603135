"""Development accounts and their roles.

The node funds eth-tester's default accounts, whose private key number `i` is the 32-byte
big-endian encoding of the integer `i`. Roles are fixed by index so that every process of
a run agrees on them without exchanging keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak


def dev_key(index: int) -> str:
    """Return the hex private key of dev account `index` (1-based)."""
    if index < 1:
        raise ValueError(f"dev account index starts at 1, got {index!r}")
    return "0x" + index.to_bytes(32, "big").hex()


def dev_account(index: int) -> LocalAccount:
    return Account.from_key(dev_key(index))


@dataclass(frozen=True)
class Roles:
    """Key holders of one deployment."""

    operator: LocalAccount
    odds_signer: LocalAccount
    guardian: LocalAccount
    reporters: tuple[LocalAccount, ...]
    funder: LocalAccount


def dev_roles() -> Roles:
    return Roles(
        operator=dev_account(1),
        odds_signer=dev_account(2),
        guardian=dev_account(3),
        reporters=(dev_account(4), dev_account(5), dev_account(6)),
        funder=dev_account(7),
    )


DEV_ACCOUNT_COUNT = 10


def derived_account(seed: int, label: str, index: int) -> LocalAccount:
    """Return a deterministic account for a simulated actor, e.g. `("bettor", 3)` of seed 7."""
    key = keccak(text=f"wagerlab:{seed}:{label}:{index}")
    return Account.from_key(key)
