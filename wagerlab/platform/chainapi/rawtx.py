"""Decoding of signed raw transactions (legacy and typed) and of Sportsbook calldata."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import rlp
from eth_account import Account

# NOTE: eth-account 0.13 has no public decoder for signed legacy transactions, so the RLP
# class comes from its private module; change this import when eth-account moves it.
from eth_account._utils.legacy_transactions import Transaction as LegacyTransaction
from eth_abi.exceptions import DecodingError, EncodingError
from eth_account.typed_transactions import TypedTransaction
from eth_typing import ChecksumAddress, HexStr
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import Web3Exception

from wagerlab.chain.compiler import load_artifacts


class RawTransactionError(ValueError):
    """Bytes that are not a signed Ethereum transaction."""


@dataclass(frozen=True)
class RawTransaction:
    """The fields of a signed transaction that the platform checks before relaying it."""

    raw: bytes
    tx_hash: HexStr
    sender: ChecksumAddress
    to: ChecksumAddress | None
    nonce: int
    chain_id: int | None
    """None for a legacy transaction signed without EIP-155 replay protection."""
    data: bytes
    value: int


def decode_raw_transaction(raw: bytes) -> RawTransaction:
    """Decode and recover the sender of a signed transaction, raising RawTransactionError."""
    if not raw:
        raise RawTransactionError("raw transaction is empty")
    try:
        fields = _typed_fields(raw) if raw[0] <= 0x7F else _legacy_fields(raw)
        sender = Account.recover_transaction(raw)
    except (rlp.exceptions.DecodingError, rlp.exceptions.DeserializationError, TypeError, ValueError) as err:
        raise RawTransactionError(f"raw transaction cannot be decoded: {err}") from err

    to = fields["to"]
    return RawTransaction(
        raw=raw,
        tx_hash=HexStr("0x" + keccak(raw).hex()),
        sender=sender,
        to=to_checksum_address(to) if to else None,
        nonce=fields["nonce"],
        chain_id=fields["chain_id"],
        data=bytes(fields["data"]),
        value=fields["value"],
    )


def _typed_fields(raw: bytes) -> dict[str, Any]:
    fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
    return {
        "to": fields.get("to") or None,
        "nonce": fields["nonce"],
        "chain_id": fields["chainId"],
        "data": HexBytes(fields.get("data", b"")),
        "value": fields.get("value", 0),
    }


def _legacy_fields(raw: bytes) -> dict[str, Any]:
    tx = rlp.decode(raw, LegacyTransaction)
    chain_id = None if tx.v in (27, 28) else (tx.v - 35) // 2
    return {"to": tx.to or None, "nonce": tx.nonce, "chain_id": chain_id, "data": tx.data, "value": tx.value}


@dataclass(frozen=True)
class ContractCall:
    function: str
    args: dict[str, Any]


class CalldataError(ValueError):
    """Calldata that does not call a function of the contract's ABI."""


class ContractCodec:
    """Encodes and decodes calldata of one contract ABI, without a provider."""

    def __init__(self, abi: list[dict[str, Any]]) -> None:
        self.contract: type[Contract] = Web3().eth.contract(abi=abi)

    def decode(self, data: bytes) -> ContractCall:
        try:
            function, args = self.contract.decode_function_input(data)
        except (Web3Exception, DecodingError, ValueError, TypeError) as err:
            raise CalldataError(f"calldata {data[:4].hex()!r}... matches no function of the ABI: {err}") from err
        return ContractCall(function=function.fn_name, args=dict(args))

    def encode(self, function: str, args: list[Any]) -> bytes:
        """Return the calldata of `function(*args)`, raising CalldataError on a bad argument."""
        try:
            return bytes(HexBytes(self.contract.encode_abi(function, args=args)))
        except (Web3Exception, EncodingError, ValueError, TypeError, AttributeError) as err:
            message = " ".join(str(err).split())
            raise CalldataError(f"cannot encode {function}({args!r}): {message}") from err


@cache
def sportsbook_codec() -> ContractCodec:
    """Return the codec of the compiled Sportsbook ABI (compiling the contracts if needed)."""
    return ContractCodec(load_artifacts()["Sportsbook"].abi)
