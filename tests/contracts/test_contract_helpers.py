"""wagerlab.chain.contracts: revert decoding, quotes and contract lookup."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_tester.exceptions import TransactionFailed
from eth_utils import keccak
from web3 import EthereumTesterProvider, Web3
from web3.exceptions import ContractLogicError

from wagerlab.chain.contracts import (
    Quote,
    UnknownContractError,
    contract,
    decode_revert,
    describe_error,
    quote_typed_data,
    revert_data,
)

ADDRESS = "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"


def _error_data(signature: str, types: list[str], values: list[object]) -> bytes:
    return keccak(text=signature)[:4] + encode(types, values)


def test_decode_custom_error_with_values() -> None:
    data = _error_data("SportsbookLiabilityCapExceeded(uint256,uint256,uint256)", ["uint256"] * 3, [1, 2000, 1999])
    assert decode_revert(data) == "SportsbookLiabilityCapExceeded(marketId=1, reserve=2000, cap=1999)"


def test_decode_checksums_addresses() -> None:
    data = _error_data("WagerTokenUnauthorized(address)", ["address"], [ADDRESS.lower()])
    assert decode_revert(data) == f"WagerTokenUnauthorized(caller={ADDRESS})"


def test_decode_accepts_hex_text() -> None:
    data = _error_data("SportsbookZeroAmount()", [], [])
    assert decode_revert("0x" + data.hex()) == "SportsbookZeroAmount()"


def test_decode_error_string_and_panic() -> None:
    assert decode_revert(_error_data("Error(string)", ["string"], ["no"])) == "Error(message='no')"
    assert decode_revert(_error_data("Panic(uint256)", ["uint256"], [0x11])) == "Panic(code=17)"


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"", "EmptyRevert()"),
        (bytes.fromhex("deadbeef"), "UnknownError(data=0xdeadbeef)"),
        (keccak(text="SportsbookBetNotFound(uint256)")[:4] + b"\x01", None),
    ],
)
def test_decode_unknown_or_short_data(data: bytes, expected: str | None) -> None:
    assert decode_revert(data) == (expected or f"UnknownError(data=0x{data.hex()})")


def test_revert_data_from_exceptions() -> None:
    data = _error_data("SportsbookZeroAmount()", [], [])
    cases = [
        TransactionFailed(data),
        TransactionFailed(f"execution reverted: {data!r}"),
        ContractLogicError("execution reverted", data="0x" + data.hex()),
        RuntimeError(TransactionFailed(data)),
    ]
    for err in cases:
        assert revert_data(err) == data, repr(err)
        assert describe_error(err) == "SportsbookZeroAmount()"


def test_revert_data_absent() -> None:
    assert revert_data(ContractLogicError("execution reverted", data=None)) is None
    assert revert_data(TransactionFailed("out of gas")) is None
    assert describe_error(TransactionFailed("out of gas")) == "out of gas"


def test_quote_from_api_and_contract_keys() -> None:
    api = {"bettor": ADDRESS.lower(), "market_id": 1, "outcome": 0, "odds": 2, "max_stake": 3, "expiry": 4, "nonce": 5}
    solidity = {"bettor": ADDRESS, "marketId": 1, "outcome": 0, "odds": 2, "maxStake": 3, "expiry": 4, "nonce": 5}

    assert Quote.from_mapping(api) == Quote.from_mapping(solidity)
    assert Quote.from_mapping(api).as_tuple() == (ADDRESS, 1, 0, 2, 3, 4, 5)


def test_quote_missing_field_raises() -> None:
    with pytest.raises(ValueError, match="quote is missing field 'nonce'"):
        Quote.from_mapping({"bettor": ADDRESS, "market_id": 1, "outcome": 0, "odds": 2, "max_stake": 3, "expiry": 4})


def test_quote_typed_data_domain() -> None:
    quote = Quote(ADDRESS, 1, 0, 2_000_000, 3, 4, 5)

    typed = quote_typed_data(31337, ADDRESS.lower(), quote)

    assert typed["primaryType"] == "Quote"
    assert typed["domain"] == {"name": "Sportsbook", "version": "1", "chainId": 31337, "verifyingContract": ADDRESS}
    assert typed["message"]["maxStake"] == 3


def test_contract_unknown_name_raises() -> None:
    with pytest.raises(UnknownContractError, match="no compiled contract named 'Casino'"):
        contract(Web3(EthereumTesterProvider()), "Casino", ADDRESS)
