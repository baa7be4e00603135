"""Typed helpers around the compiled contracts: contract objects, signed transactions,
revert decoding and EIP-712 quotes.

Every process of the platform uses these, so that Python and Solidity agree on one quote
digest and one way of naming a custom error.
"""

from __future__ import annotations

import ast
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress, HexStr
from eth_utils import keccak, to_checksum_address
from eth_utils.abi import abi_to_signature, get_abi_input_types
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import ContractLogicError
from web3.types import TxParams, TxReceipt

from wagerlab.chain.compiler import ContractArtifact, load_artifacts

logger = logging.getLogger(__name__)

CONTRACT_NAMES = ("WagerToken", "Sportsbook", "ResultOracle")
PRIORITY_FEE_WEI = 10**9
RECEIPT_TIMEOUT_SECONDS = 30.0

_ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")
_PANIC_SELECTOR = bytes.fromhex("4e487b71")
_REVERTED_PREFIX = "execution reverted: "

QUOTE_TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Quote": [
        {"name": "bettor", "type": "address"},
        {"name": "marketId", "type": "uint256"},
        {"name": "outcome", "type": "uint8"},
        {"name": "odds", "type": "uint256"},
        {"name": "maxStake", "type": "uint256"},
        {"name": "expiry", "type": "uint64"},
        {"name": "nonce", "type": "uint256"},
    ],
}


class UnknownContractError(KeyError):
    """No compiled contract has the requested name."""


@dataclass(frozen=True)
class Quote:
    """A price offer the odds signer signs for one bettor (the Sportsbook's `Quote` struct)."""

    bettor: ChecksumAddress
    market_id: int
    outcome: int
    odds: int
    max_stake: int
    expiry: int
    """Last valid block timestamp, in seconds."""
    nonce: int

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Quote:
        """Build a quote from the API's snake_case keys or the contract's camelCase keys."""
        try:
            return cls(
                bettor=to_checksum_address(data["bettor"]),
                market_id=int(data["market_id"] if "market_id" in data else data["marketId"]),
                outcome=int(data["outcome"]),
                odds=int(data["odds"]),
                max_stake=int(data["max_stake"] if "max_stake" in data else data["maxStake"]),
                expiry=int(data["expiry"]),
                nonce=int(data["nonce"]),
            )
        except KeyError as err:
            raise ValueError(f"quote is missing field {err.args[0]!r}: got keys {sorted(data)}") from err

    def as_tuple(self) -> tuple[ChecksumAddress, int, int, int, int, int, int]:
        """Return the fields in the order of the Solidity struct, for `placeBet` and `hashQuote`."""
        return (self.bettor, self.market_id, self.outcome, self.odds, self.max_stake, self.expiry, self.nonce)

    def to_message(self) -> dict[str, Any]:
        """Return the EIP-712 message with the Solidity field names."""
        return {
            "bettor": self.bettor,
            "marketId": self.market_id,
            "outcome": self.outcome,
            "odds": self.odds,
            "maxStake": self.max_stake,
            "expiry": self.expiry,
            "nonce": self.nonce,
        }


def artifact(name: str) -> ContractArtifact:
    artifacts = load_artifacts()
    if name not in artifacts:
        raise UnknownContractError(f"no compiled contract named {name!r}: known are {sorted(artifacts)}")
    return artifacts[name]


def contract(w3: Web3, name: str, address: str) -> Contract:
    """Return a web3 contract object for the deployed contract `name` at `address`."""
    return w3.eth.contract(address=to_checksum_address(address), abi=artifact(name).abi)


def contract_factory(w3: Web3, name: str) -> type[Contract]:
    """Return a web3 contract class with ABI and bytecode, for deploying `name`."""
    compiled = artifact(name)
    return w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)


# ---------------------------------------------------------------- transactions


def fee_fields(w3: Web3) -> TxParams:
    """Return EIP-1559 fee fields that stay valid while the base fee at most doubles."""
    base_fee = w3.eth.get_block("latest").get("baseFeePerGas")
    if base_fee is None:
        return {"gasPrice": w3.eth.gas_price}
    return {"maxFeePerGas": 2 * base_fee + PRIORITY_FEE_WEI, "maxPriorityFeePerGas": PRIORITY_FEE_WEI}


def transact(
    w3: Web3,
    account: LocalAccount,
    call: ContractFunction | ContractConstructor,
    *,
    gas: int,
    value: int = 0,
    nonce: int | None = None,
) -> TxReceipt:
    """Sign `call` with `account`, send it with an explicit gas limit and return its receipt.

    The receipt's status is not checked: under an explicit gas limit a failing transaction
    is mined with status 0 and no exception, so callers check `receipt["status"]` and may
    call `revert_reason` to learn why.
    """
    params: TxParams = {
        "from": account.address,
        "nonce": nonce if nonce is not None else w3.eth.get_transaction_count(account.address, "pending"),
        "gas": gas,
        "value": value,
        "chainId": w3.eth.chain_id,
        **fee_fields(w3),
    }
    tx = call.build_transaction(params)
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_SECONDS)
    logger.debug("sent %s from %s: status %s, gas used %s", tx_hash.to_0x_hex(), account.address, receipt["status"], receipt["gasUsed"])
    return receipt


def revert_reason(w3: Web3, receipt: TxReceipt) -> str | None:
    """Replay a mined transaction as a call on the state before its block and decode the revert.

    NOTE: the replay runs on the state at the end of the previous block, so on a node that
    mines several transactions per block an earlier transaction of the same block is not
    seen. The node also picks the replay's block timestamp, which need not be the mined
    block's, so a revert that depends on `block.timestamp` may not reproduce. None means
    the replay did not revert.
    """
    tx = w3.eth.get_transaction(receipt["transactionHash"])
    call: TxParams = {"from": tx["from"], "data": tx["input"], "value": tx["value"], "gas": tx["gas"]}
    if tx.get("to"):
        call["to"] = tx["to"]
    try:
        w3.eth.call(call, block_identifier=receipt["blockNumber"] - 1)
    except Exception as err:  # noqa: BLE001 - eth-tester and web3 raise unrelated classes here
        data = revert_data(err)
        return decode_revert(data) if data is not None else str(err)
    return None


# ---------------------------------------------------------------- revert decoding


def revert_data(err: BaseException) -> bytes | None:
    """Extract the raw revert data from a web3 or eth-tester exception, or None if it has none.

    web3 raises `ContractLogicError` with hex `data` (anvil, any JSON-RPC node). eth-tester
    raises `TransactionFailed` with the bytes as its argument, and web3's in-process
    eth-tester provider re-raises it with the message `execution reverted: b'...'`.
    """
    if isinstance(err, ContractLogicError):
        data = err.data
        if isinstance(data, str) and data.startswith("0x"):
            return bytes(HexBytes(data))
        return None
    for arg in err.args:
        if isinstance(arg, (bytes, bytearray)):
            return bytes(arg)
        if isinstance(arg, BaseException):
            return revert_data(arg)
        if isinstance(arg, str):
            return _bytes_from_message(arg)
    return None


def _bytes_from_message(message: str) -> bytes | None:
    text = message.removeprefix(_REVERTED_PREFIX)
    if text.startswith(("b'", 'b"')):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return None
        return value if isinstance(value, bytes) else None
    if text.startswith("0x"):
        try:
            return bytes(HexBytes(text))
        except ValueError:
            return None
    return None


def decode_revert(data: bytes | str) -> str:
    """Return revert data as `ErrorName(arg=value, ...)`, using the errors of every contract.

    `Error(string)` and `Panic(uint256)` are decoded too; unknown data is returned as
    `UnknownError(data=0x...)`.
    """
    raw = bytes(HexBytes(data)) if isinstance(data, str) else bytes(data)
    if not raw:
        return "EmptyRevert()"
    selector, payload = raw[:4], raw[4:]
    if selector == _ERROR_STRING_SELECTOR:
        return _format_error("Error", ["message"], ["string"], payload, raw)
    if selector == _PANIC_SELECTOR:
        return _format_error("Panic", ["code"], ["uint256"], payload, raw)
    error_abi = _error_abis_by_selector().get(selector)
    if error_abi is None:
        return f"UnknownError(data=0x{raw.hex()})"
    names = [item["name"] for item in error_abi.get("inputs", [])]
    return _format_error(error_abi["name"], names, get_abi_input_types(error_abi), payload, raw)


def describe_error(err: BaseException) -> str:
    """Return the decoded custom error inside `err`, or its message when it carries no data."""
    data = revert_data(err)
    return decode_revert(data) if data is not None else str(err)


def _format_error(name: str, names: list[str], types: list[str], payload: bytes, raw: bytes) -> str:
    # eth_abi pads a short payload with zeros instead of failing, so check the length first.
    if len(payload) % 32 != 0 or len(payload) < 32 * len(types):
        return f"UnknownError(data=0x{raw.hex()})"
    try:
        values = abi_decode(types, payload)
    except DecodingError:
        return f"UnknownError(data=0x{raw.hex()})"
    args = ", ".join(f"{arg}={_format_value(value)}" for arg, value in zip(names, values))
    return f"{name}({args})"


def _format_value(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return to_checksum_address(value)
    if isinstance(value, str):
        return repr(value)
    return str(value)


@functools.cache
def _error_abis_by_selector() -> dict[bytes, dict[str, Any]]:
    by_selector: dict[bytes, dict[str, Any]] = {}
    for compiled in load_artifacts().values():
        for item in compiled.abi:
            if item.get("type") == "error":
                by_selector[keccak(text=abi_to_signature(item))[:4]] = item
    return by_selector


# ---------------------------------------------------------------- EIP-712 quotes


def quote_typed_data(chain_id: int, sportsbook: str, quote: Quote | Mapping[str, Any]) -> dict[str, Any]:
    """Return the full EIP-712 typed data of `quote` for the Sportsbook at `sportsbook`."""
    if not isinstance(quote, Quote):
        quote = Quote.from_mapping(quote)
    return {
        "types": QUOTE_TYPES,
        "primaryType": "Quote",
        "domain": {
            "name": "Sportsbook",
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(sportsbook),
        },
        "message": quote.to_message(),
    }


def quote_digest(chain_id: int, sportsbook: str, quote: Quote | Mapping[str, Any]) -> bytes:
    """Return the 32-byte digest the odds signer signs; it equals the contract's `hashQuote`."""
    signable = encode_typed_data(full_message=quote_typed_data(chain_id, sportsbook, quote))
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def sign_quote(account: LocalAccount, chain_id: int, sportsbook: str, quote: Quote | Mapping[str, Any]) -> HexStr:
    """Sign `quote` as the odds signer and return the 65-byte signature as 0x-prefixed hex."""
    signed = account.sign_message(encode_typed_data(full_message=quote_typed_data(chain_id, sportsbook, quote)))
    return HexStr(signed.signature.to_0x_hex())
