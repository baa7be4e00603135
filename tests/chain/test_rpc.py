"""Unit tests of the wire codecs in wagerlab.chain.rpc."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode as abi_encode

from wagerlab.chain import rpc
from wagerlab.chain.errors import InvalidParams

TOPIC_A = b"\xaa" * 32
TOPIC_B = b"\xbb" * 32
ADDRESS_1 = b"\x01" * 20
ADDRESS_2 = b"\x02" * 20


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0x0", 0), ("0x1a", 26), ("0xFF", 255), ("0x" + "f" * 64, 2**256 - 1)],
)
def test_decode_quantity_valid(value: str, expected: int) -> None:
    assert rpc.decode_quantity(value, "n") == expected


@pytest.mark.parametrize("value", ["0x", "12", "0xg1", 12, None, "-0x1", "0x" + "1" * 65])
def test_decode_quantity_invalid_names_param(value: Any) -> None:
    with pytest.raises(InvalidParams, match="invalid params: amount: expected a hex quantity"):
        rpc.decode_quantity(value, "amount")


def test_decode_data_sizes() -> None:
    assert rpc.decode_data("0x", "d") == b""
    assert rpc.decode_data("0x0102", "d") == b"\x01\x02"
    with pytest.raises(InvalidParams, match="expected 20 bytes, got 2"):
        rpc.decode_address("0x0102", "to")
    with pytest.raises(InvalidParams, match="even-length"):
        rpc.decode_data("0x123", "d")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("latest", "latest"),
        ("pending", "pending"),
        ("safe", "safe"),
        ("finalized", "finalized"),
        ("earliest", "earliest"),
        ("0x10", 16),
        ({"blockNumber": "0x2"}, 2),
        ({"blockHash": "0x" + "ab" * 32}, b"\xab" * 32),
    ],
)
def test_decode_block_id(value: Any, expected: Any) -> None:
    assert rpc.decode_block_id(value, "block") == expected


@pytest.mark.parametrize("value", ["newest", 5, {"other": 1}, "0x"])
def test_decode_block_id_invalid(value: Any) -> None:
    with pytest.raises(InvalidParams, match="block"):
        rpc.decode_block_id(value, "block")


def test_log_filter_address_list_and_topic_or() -> None:
    log_filter = rpc.decode_log_filter(
        {
            "address": ["0x" + ADDRESS_1.hex(), "0x" + ADDRESS_2.hex()],
            "topics": [["0x" + TOPIC_A.hex(), "0x" + TOPIC_B.hex()], None, "0x" + TOPIC_B.hex()],
        },
        "filter",
    )

    assert log_filter.matches(ADDRESS_1, [TOPIC_A, TOPIC_A, TOPIC_B])
    assert log_filter.matches(ADDRESS_2, [TOPIC_B, TOPIC_B, TOPIC_B])
    assert not log_filter.matches(b"\x03" * 20, [TOPIC_A, TOPIC_A, TOPIC_B])
    assert not log_filter.matches(ADDRESS_1, [TOPIC_A, TOPIC_A, TOPIC_A])
    assert not log_filter.matches(ADDRESS_1, [TOPIC_A, TOPIC_A])


def test_log_filter_empty_matches_everything() -> None:
    log_filter = rpc.decode_log_filter({}, "filter")

    assert log_filter.matches(ADDRESS_1, [])
    assert log_filter.matches(ADDRESS_2, [TOPIC_A])


def test_log_filter_rejects_bad_topic() -> None:
    with pytest.raises(InvalidParams, match=r"filter.topics\[1\]"):
        rpc.decode_log_filter({"topics": [None, "0x1234"]}, "filter")


def test_revert_reason_decodes_error_string() -> None:
    payload = rpc.ERROR_STRING_SELECTOR + abi_encode(["string"], ["no funds"])

    assert rpc.revert_reason(payload) == "no funds"
    assert rpc.revert_reason(b"\x12\x34\x56\x78") is None
    assert rpc.revert_reason(rpc.ERROR_STRING_SELECTOR + b"\x00") is None
