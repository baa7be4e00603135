"""Decoding of the transaction object of eth_call, eth_estimateGas and eth_sendTransaction.

The result is the snake_case dict that eth-tester's PyEVMBackend expects. eth-tester 0.13
picks the transaction type from the fields it finds: `gas_price` alone gives a legacy
transaction, `gas_price` with `access_list` an access list transaction, and anything else
a dynamic fee transaction. So this module checks the `type` field and the fee fields
against each other and rejects a mix that eth-tester would turn into a different type or
fail on. The decoded `type` stays in the dict under "type", which eth-tester skips.
"""

from __future__ import annotations

from typing import Any, Final

from wagerlab.chain import rpc
from wagerlab.chain.errors import InvalidParams

LEGACY_TYPE: Final = 0
ACCESS_LIST_TYPE: Final = 1
DYNAMIC_FEE_TYPE: Final = 2
SUPPORTED_TYPES: Final[dict[int, str]] = {
    LEGACY_TYPE: "legacy",
    ACCESS_LIST_TYPE: "access list",
    DYNAMIC_FEE_TYPE: "dynamic fee",
}
GAS_PRICE_TYPES: Final = frozenset([LEGACY_TYPE, ACCESS_LIST_TYPE])

_QUANTITIES: Final = (
    ("gas", "gas"),
    ("gasPrice", "gas_price"),
    ("maxFeePerGas", "max_fee_per_gas"),
    ("maxPriorityFeePerGas", "max_priority_fee_per_gas"),
    ("value", "value"),
    ("nonce", "nonce"),
)
_DYNAMIC_FEE_FIELDS: Final = (
    ("maxFeePerGas", "max_fee_per_gas"),
    ("maxPriorityFeePerGas", "max_priority_fee_per_gas"),
)
FEE_FIELDS: Final = ("gas_price", "max_fee_per_gas", "max_priority_fee_per_gas")


def decode_transaction_request(value: Any, name: str) -> dict[str, Any]:
    """Decode a transaction object. The dict has no "from" key when the request has none."""
    request = rpc.decode_object(value, name)
    tx: dict[str, Any] = {}
    if request.get("from") is not None:
        tx["from"] = rpc.decode_address(request["from"], f"{name}.from")
    tx["to"] = b"" if request.get("to") is None else rpc.decode_address(request["to"], f"{name}.to")

    payload = request.get("input", request.get("data"))
    tx["data"] = b"" if payload is None else rpc.decode_data(payload, f"{name}.input")
    for key, field in _QUANTITIES:
        if request.get(key) is not None:
            tx[field] = rpc.decode_quantity(request[key], f"{name}.{key}")
    if request.get("accessList") is not None:
        tx["access_list"] = decode_access_list(request["accessList"], f"{name}.accessList")

    _check_fee_style(tx, name)
    if request.get("type") is not None:
        tx["type"] = _decode_type(request["type"], tx, f"{name}.type")
    return tx


def decode_access_list(value: Any, name: str) -> tuple[tuple[bytes, tuple[int, ...]], ...]:
    """Decode an EIP-2930 access list into py-evm's form: (address, storage slots) pairs."""
    if not isinstance(value, list):
        raise InvalidParams(name, f"expected a list of {{address, storageKeys}} objects, got {value!r}")
    entries = []
    for index, item in enumerate(value):
        entry = rpc.decode_object(item, f"{name}[{index}]")
        address = rpc.decode_address(entry.get("address"), f"{name}[{index}].address")
        keys = entry.get("storageKeys", [])
        if not isinstance(keys, list):
            raise InvalidParams(f"{name}[{index}].storageKeys", f"expected a list of 32-byte keys, got {keys!r}")
        slots = tuple(
            int.from_bytes(rpc.decode_hash(key, f"{name}[{index}].storageKeys[{position}]"), "big")
            for position, key in enumerate(keys)
        )
        entries.append((address, slots))
    return tuple(entries)


def _check_fee_style(tx: dict[str, Any], name: str) -> None:
    dynamic_fields = [key for key, field in _DYNAMIC_FEE_FIELDS if field in tx]
    if "gas_price" in tx and dynamic_fields:
        raise InvalidParams(
            name,
            f"gasPrice and {' and '.join(dynamic_fields)} were both given; send gasPrice for a "
            "legacy or access list transaction, or maxFeePerGas and maxPriorityFeePerGas for "
            "a dynamic fee transaction, not both",
        )


def _decode_type(value: Any, tx: dict[str, Any], name: str) -> int:
    type_id = rpc.decode_quantity(value, name)
    if type_id not in SUPPORTED_TYPES:
        supported = ", ".join(f"{hex(known)} ({label})" for known, label in SUPPORTED_TYPES.items())
        raise InvalidParams(name, f"unsupported transaction type {hex(type_id)}; supported types are {supported}")

    label = f"type {hex(type_id)} ({SUPPORTED_TYPES[type_id]})"
    if type_id in GAS_PRICE_TYPES:
        dynamic_fields = [key for key, field in _DYNAMIC_FEE_FIELDS if field in tx]
        if dynamic_fields:
            raise InvalidParams(
                name,
                f"a {label} transaction takes gasPrice, not {' or '.join(dynamic_fields)}; "
                "send type 0x2 for dynamic fees",
            )
    elif "gas_price" in tx:
        raise InvalidParams(
            name,
            f"a {label} transaction takes maxFeePerGas and maxPriorityFeePerGas, not gasPrice; "
            "send type 0x0 or 0x1 for a gas price",
        )
    if type_id == LEGACY_TYPE and "access_list" in tx:
        raise InvalidParams(name, f"a {label} transaction has no access list; send type 0x1 or 0x2 with accessList")
    if type_id == ACCESS_LIST_TYPE:
        tx.setdefault("access_list", ())
    return type_id
