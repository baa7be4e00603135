"""JSON-RPC wire encoding: quantities, data, block tags, and the block, transaction,
receipt and log objects in the shape geth returns them.

Decoders take the raw JSON value and the parameter's name, and raise `InvalidParams`
naming that parameter. Encoders take py-evm objects and return JSON-ready dicts with
camelCase keys, quantities as minimal `0x` hex and data as even-length `0x` hex.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal, Sequence

from eth._utils.address import generate_contract_address
from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI
from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError

from wagerlab.chain.errors import InvalidParams

BlockTag = Literal["latest", "earliest", "pending", "safe", "finalized"]
BlockId = BlockTag | int

BLOCK_TAGS: Final[frozenset[str]] = frozenset(
    ["latest", "earliest", "pending", "safe", "finalized"]
)
ERROR_STRING_SELECTOR: Final = bytes.fromhex("08c379a0")
_QUANTITY_RE = re.compile(r"^0x[0-9a-fA-F]{1,64}$")
_DATA_RE = re.compile(r"^0x([0-9a-fA-F]{2})*$")
_MISSING: Final = object()


# ---------------------------------------------------------------------------
# Encoding of scalars


def quantity(value: int) -> str:
    return hex(value)


def data(value: bytes) -> str:
    return "0x" + value.hex()


def address_or_none(value: bytes) -> str | None:
    """Encode an address, or `None` for the empty `to` of a contract creation."""
    return data(value) if value else None


# ---------------------------------------------------------------------------
# Decoding of parameters


def param(params: Sequence[Any], index: int, name: str, default: Any = _MISSING) -> Any:
    """Return positional parameter `index`, or `default` when it is absent or null."""
    if index < len(params) and params[index] is not None:
        return params[index]
    if default is _MISSING:
        raise InvalidParams(name, "missing value")
    return default


def decode_quantity(value: Any, name: str) -> int:
    if not isinstance(value, str) or not _QUANTITY_RE.match(value):
        raise InvalidParams(name, f"expected a hex quantity such as '0x1a', got {value!r}")
    return int(value, 16)


def decode_data(value: Any, name: str, size: int | None = None) -> bytes:
    if not isinstance(value, str) or not _DATA_RE.match(value):
        raise InvalidParams(name, f"expected even-length 0x-prefixed hex data, got {value!r}")
    raw = bytes.fromhex(value[2:])
    if size is not None and len(raw) != size:
        raise InvalidParams(name, f"expected {size} bytes, got {len(raw)} in {value!r}")
    return raw


def decode_address(value: Any, name: str) -> bytes:
    return decode_data(value, name, size=20)


def decode_hash(value: Any, name: str) -> bytes:
    return decode_data(value, name, size=32)


def decode_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidParams(name, f"expected true or false, got {value!r}")
    return value


def decode_block_id(value: Any, name: str) -> BlockId | bytes:
    """Decode a block tag, a number, or an EIP-1898 object. A block hash is returned as bytes."""
    if isinstance(value, str) and value in BLOCK_TAGS:
        return value  # type: ignore[return-value]
    if isinstance(value, dict):
        if "blockHash" in value:
            return decode_hash(value["blockHash"], f"{name}.blockHash")
        if "blockNumber" in value:
            return decode_block_id(value["blockNumber"], f"{name}.blockNumber")
        raise InvalidParams(name, f"expected blockHash or blockNumber in {value!r}")
    if isinstance(value, str) and _QUANTITY_RE.match(value):
        return int(value, 16)
    raise InvalidParams(
        name,
        f"expected a block number or one of {sorted(BLOCK_TAGS)}, got {value!r}",
    )


def decode_object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidParams(name, f"expected an object, got {value!r}")
    return value


# ---------------------------------------------------------------------------
# Log filters


@dataclass(frozen=True)
class LogFilter:
    """Address and topic criteria of `eth_getLogs` and a `logs` subscription.

    `addresses` is None for any address. `topics[i]` is None for any value at position i,
    otherwise the set of accepted values (an OR-list).
    """

    addresses: frozenset[bytes] | None
    topics: tuple[frozenset[bytes] | None, ...]

    def matches(self, address: bytes, topics: Sequence[bytes]) -> bool:
        if self.addresses is not None and address not in self.addresses:
            return False
        for position, accepted in enumerate(self.topics):
            if accepted is None:
                continue
            if position >= len(topics) or topics[position] not in accepted:
                return False
        return True


def decode_log_filter(criteria: dict[str, Any], name: str) -> LogFilter:
    raw_address = criteria.get("address")
    if raw_address is None:
        addresses = None
    elif isinstance(raw_address, list):
        addresses = frozenset(
            decode_address(item, f"{name}.address[{i}]") for i, item in enumerate(raw_address)
        )
    else:
        addresses = frozenset([decode_address(raw_address, f"{name}.address")])

    raw_topics = criteria.get("topics")
    if raw_topics is None:
        raw_topics = []
    if not isinstance(raw_topics, list):
        raise InvalidParams(f"{name}.topics", f"expected a list, got {raw_topics!r}")
    topics = tuple(
        _decode_topic_slot(slot, f"{name}.topics[{i}]") for i, slot in enumerate(raw_topics)
    )
    return LogFilter(addresses=addresses, topics=topics)


def _decode_topic_slot(slot: Any, name: str) -> frozenset[bytes] | None:
    if slot is None:
        return None
    if isinstance(slot, list):
        if not slot or any(item is None for item in slot):
            return None
        return frozenset(decode_hash(item, f"{name}[{i}]") for i, item in enumerate(slot))
    return frozenset([decode_hash(slot, name)])


# ---------------------------------------------------------------------------
# Revert data


def revert_reason(revert_data: bytes) -> str | None:
    """Return the message of a Solidity `Error(string)` revert, or None for other data."""
    if revert_data[:4] != ERROR_STRING_SELECTOR:
        return None
    try:
        (message,) = abi_decode(["string"], revert_data[4:])
    except DecodingError:
        return None
    return str(message)


# ---------------------------------------------------------------------------
# Blocks, transactions, receipts and logs


def encode_header(header: BlockHeaderAPI, *, pending: bool = False) -> dict[str, Any]:
    """Encode the header fields of a block, as in `eth_getBlockByNumber` and `newHeads`."""
    encoded: dict[str, Any] = {
        "number": quantity(header.block_number),
        "hash": None if pending else data(header.hash),
        "parentHash": data(header.parent_hash),
        "nonce": data(header.nonce),
        "mixHash": data(header.mix_hash),
        "sha3Uncles": data(header.uncles_hash),
        "logsBloom": data(header.bloom.to_bytes(256, "big")),
        "transactionsRoot": data(header.transaction_root),
        "stateRoot": data(header.state_root),
        "receiptsRoot": data(header.receipt_root),
        "miner": data(header.coinbase),
        "difficulty": quantity(header.difficulty),
        "totalDifficulty": quantity(header.difficulty),
        "extraData": data(header.extra_data),
        "gasLimit": quantity(header.gas_limit),
        "gasUsed": quantity(header.gas_used),
        "timestamp": quantity(header.timestamp),
    }
    _add_optional_header_fields(encoded, header)
    return encoded


_OPTIONAL_HEADER_FIELDS: Final = (
    ("base_fee_per_gas", "baseFeePerGas", quantity),
    ("withdrawals_root", "withdrawalsRoot", data),
    ("blob_gas_used", "blobGasUsed", quantity),
    ("excess_blob_gas", "excessBlobGas", quantity),
    ("parent_beacon_block_root", "parentBeaconBlockRoot", data),
    ("requests_hash", "requestsHash", data),
)


def _add_optional_header_fields(encoded: dict[str, Any], header: BlockHeaderAPI) -> None:
    for attribute, key, encoder in _OPTIONAL_HEADER_FIELDS:
        value = getattr(header, attribute, None)
        if value is not None:
            encoded[key] = encoder(value)


def encode_block(
    block: BlockAPI, *, full_transactions: bool, size: int, pending: bool = False
) -> dict[str, Any]:
    encoded = encode_header(block.header, pending=pending)
    encoded["size"] = quantity(size)
    if full_transactions:
        encoded["transactions"] = [
            encode_transaction(block, tx, index, pending=pending)
            for index, tx in enumerate(block.transactions)
        ]
    else:
        encoded["transactions"] = [data(tx.hash) for tx in block.transactions]
    encoded["uncles"] = [data(uncle.hash) for uncle in block.uncles]
    withdrawals = getattr(block, "withdrawals", None)
    if withdrawals is not None:
        encoded["withdrawals"] = [
            {
                "index": quantity(withdrawal.index),
                "validatorIndex": quantity(withdrawal.validator_index),
                "address": data(withdrawal.address),
                "amount": quantity(withdrawal.amount),
            }
            for withdrawal in withdrawals
        ]
    return encoded


def transaction_type(tx: SignedTransactionAPI) -> int:
    return int(getattr(tx, "type_id", None) or 0)


def effective_gas_price(tx: SignedTransactionAPI, base_fee: int) -> int:
    if transaction_type(tx) >= 2:
        return min(tx.max_fee_per_gas, tx.max_priority_fee_per_gas + base_fee)
    return tx.gas_price


def encode_transaction(
    block: BlockAPI, tx: SignedTransactionAPI, index: int, *, pending: bool = False
) -> dict[str, Any]:
    tx_type = transaction_type(tx)
    encoded: dict[str, Any] = {
        "type": quantity(tx_type),
        "hash": data(tx.hash),
        "nonce": quantity(tx.nonce),
        "blockHash": None if pending else data(block.hash),
        "blockNumber": None if pending else quantity(block.number),
        "transactionIndex": None if pending else quantity(index),
        "from": data(tx.sender),
        "to": address_or_none(tx.to),
        "value": quantity(tx.value),
        "gas": quantity(tx.gas),
        "input": data(tx.data),
    }
    base_fee = getattr(block.header, "base_fee_per_gas", None) or 0
    encoded["gasPrice"] = quantity(
        tx.max_fee_per_gas if pending and tx_type >= 2 else effective_gas_price(tx, base_fee)
    )
    if tx_type >= 1:
        encoded["chainId"] = quantity(tx.chain_id)
        encoded["accessList"] = [
            {"address": data(address), "storageKeys": [data(key.to_bytes(32, "big")) for key in keys]}
            for address, keys in (tx.access_list or ())
        ]
    if tx_type >= 2:
        encoded["maxFeePerGas"] = quantity(tx.max_fee_per_gas)
        encoded["maxPriorityFeePerGas"] = quantity(tx.max_priority_fee_per_gas)
    if tx_type == 3:
        encoded["maxFeePerBlobGas"] = quantity(tx.max_fee_per_blob_gas)
        encoded["blobVersionedHashes"] = [data(h) for h in tx.blob_versioned_hashes]
    if tx_type == 4:
        encoded["authorizationList"] = [_encode_authorization(item) for item in tx.authorization_list]
    _add_signature(encoded, tx, tx_type)
    return encoded


def _encode_authorization(item: Any) -> dict[str, str]:
    return {
        "chainId": quantity(item.chain_id),
        "address": data(item.address),
        "nonce": quantity(item.nonce),
        "yParity": quantity(item.y_parity),
        "r": quantity(item.r),
        "s": quantity(item.s),
    }


def _add_signature(encoded: dict[str, Any], tx: SignedTransactionAPI, tx_type: int) -> None:
    if tx_type == 0:
        encoded["v"] = quantity(tx.v)
    else:
        encoded["v"] = quantity(tx.y_parity)
        encoded["yParity"] = quantity(tx.y_parity)
    encoded["r"] = quantity(tx.r)
    encoded["s"] = quantity(tx.s)


def encode_receipt(
    block: BlockAPI,
    receipts: Sequence[ReceiptAPI],
    index: int,
    logs: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """Encode receipt `index` of `block`, where `logs` are that transaction's encoded logs."""
    tx = block.transactions[index]
    receipt = receipts[index]
    previous_cumulative = receipts[index - 1].gas_used if index > 0 else 0
    base_fee = getattr(block.header, "base_fee_per_gas", None) or 0
    contract_address = None
    if not tx.to:
        contract_address = data(generate_contract_address(tx.sender, tx.nonce))

    return {
        "type": quantity(transaction_type(tx)),
        "status": quantity(1 if receipt.state_root == b"\x01" else 0),
        "transactionHash": data(tx.hash),
        "transactionIndex": quantity(index),
        "blockHash": data(block.hash),
        "blockNumber": quantity(block.number),
        "from": data(tx.sender),
        "to": address_or_none(tx.to),
        "contractAddress": contract_address,
        "cumulativeGasUsed": quantity(receipt.gas_used),
        "gasUsed": quantity(receipt.gas_used - previous_cumulative),
        "effectiveGasPrice": quantity(effective_gas_price(tx, base_fee)),
        "logs": list(logs),
        "logsBloom": data(receipt.bloom.to_bytes(256, "big")),
    }


def encode_log(
    block: BlockAPI,
    tx: SignedTransactionAPI,
    tx_index: int,
    log_index: int,
    address: bytes,
    topics: Sequence[bytes],
    log_data: bytes,
) -> dict[str, Any]:
    return {
        "address": data(address),
        "topics": [data(topic) for topic in topics],
        "data": data(log_data),
        "blockNumber": quantity(block.number),
        "blockHash": data(block.hash),
        "blockTimestamp": quantity(block.header.timestamp),
        "transactionHash": data(tx.hash),
        "transactionIndex": quantity(tx_index),
        "logIndex": quantity(log_index),
        "removed": False,
    }
