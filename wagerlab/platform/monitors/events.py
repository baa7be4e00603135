"""Sportsbook event ABIs, and the decoding of logs into typed event arguments.

Logs reach a monitor in two shapes: raw JSON-RPC dicts (hex strings) and web3's formatted
`AttributeDict`s (`HexBytes` and ints). `ChainLog.from_rpc` turns both into one shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_typing import ChecksumAddress, HexStr
from eth_utils import event_abi_to_log_topic, to_bytes, to_checksum_address

from wagerlab.chain.compiler import load_artifacts
from wagerlab.platform.monitors.errors import EventDecodeError, UnknownEventError


def sportsbook_event_abis() -> dict[str, dict[str, Any]]:
    """Return the event ABIs of the compiled Sportsbook by event name."""
    abi = load_artifacts()["Sportsbook"].abi
    return {item["name"]: item for item in abi if item["type"] == "event"}


@dataclass(frozen=True)
class ChainLog:
    """One log as a node reports it, with bytes for topics and data."""

    address: ChecksumAddress
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    block_hash: HexStr
    tx_hash: HexStr
    log_index: int
    removed: bool = False

    @property
    def position(self) -> tuple[int, int]:
        """Where the log sits in the chain, ordered like a monitor cursor."""
        return (self.block_number, self.log_index)

    @classmethod
    def from_rpc(cls, raw: Mapping[str, Any]) -> ChainLog:
        """Build a log from a JSON-RPC log object, raw (hex strings) or formatted by web3."""
        try:
            return cls(
                address=to_checksum_address(raw["address"]),
                topics=tuple(_as_bytes(topic) for topic in raw["topics"]),
                data=_as_bytes(raw["data"]),
                block_number=_as_int(raw["blockNumber"]),
                block_hash=_as_hex(raw["blockHash"]),
                tx_hash=_as_hex(raw["transactionHash"]),
                log_index=_as_int(raw["logIndex"]),
                removed=bool(raw.get("removed", False)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise EventDecodeError(f"log {dict(raw)!r} is not a JSON-RPC log object: {err!r}") from err


def _as_bytes(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return bytes(value)
    return to_bytes(hexstr=HexStr(value))


def _as_int(value: str | int) -> int:
    if isinstance(value, int):
        return value
    return int(value, 16)


def _as_hex(value: str | bytes) -> HexStr:
    return HexStr("0x" + _as_bytes(value).hex())


@dataclass(frozen=True)
class DecodedEvent:
    """A log together with its event name and arguments."""

    name: str
    args: dict[str, Any]
    """Arguments by ABI name: integers as ints, addresses checksummed."""
    log: ChainLog


class EventCodec:
    """Decodes the logs of a fixed set of events, selected by their first topic."""

    def __init__(self, event_abis: Iterable[Mapping[str, Any]]) -> None:
        self._by_topic: dict[bytes, Mapping[str, Any]] = {}
        for abi in event_abis:
            dynamic = [item["type"] for item in abi["inputs"] if not _is_one_word(item["type"])]
            if dynamic:
                raise EventDecodeError(f"event {abi['name']} has arguments of types {dynamic}; this codec reads only one-word static types")
            self._by_topic[event_abi_to_log_topic(dict(abi))] = abi

    @classmethod
    def for_events(cls, names: Iterable[str]) -> EventCodec:
        """Build a codec for the named Sportsbook events."""
        abis = sportsbook_event_abis()
        requested = list(names)
        missing = [name for name in requested if name not in abis]
        if missing:
            raise UnknownEventError(f"no Sportsbook event named {missing!r}; known: {sorted(abis)!r}")
        return cls(abis[name] for name in requested)

    @property
    def topics(self) -> list[HexStr]:
        """The first topics of the codec's events, as hex strings for a log filter."""
        return [HexStr("0x" + topic.hex()) for topic in self._by_topic]

    def decode(self, log: ChainLog) -> DecodedEvent:
        """Decode a log's indexed topics and data into the event's named arguments."""
        if not log.topics or log.topics[0] not in self._by_topic:
            first = log.topics[0].hex() if log.topics else None
            raise UnknownEventError(f"log {log.tx_hash}:{log.log_index} has first topic {first!r}, not an event this codec reads")
        abi = self._by_topic[log.topics[0]]
        indexed = [item for item in abi["inputs"] if item["indexed"]]
        plain = [item for item in abi["inputs"] if not item["indexed"]]
        if len(log.topics) != len(indexed) + 1:
            raise EventDecodeError(
                f"{abi['name']} log {log.tx_hash}:{log.log_index} has {len(log.topics)} topics, expected {len(indexed) + 1}"
            )

        _check_word_sizes(abi, log, len(plain))

        try:
            values: dict[str, Any] = {}
            for item, topic in zip(indexed, log.topics[1:], strict=True):
                (values[item["name"]],) = abi_decode([item["type"]], topic)
            plain_values = abi_decode([item["type"] for item in plain], log.data)
        except DecodingError as err:
            raise EventDecodeError(f"{abi['name']} log {log.tx_hash}:{log.log_index} does not decode: {err}") from err
        values.update(zip((item["name"] for item in plain), plain_values, strict=True))

        args = {item["name"]: _normalize(item["type"], values[item["name"]]) for item in abi["inputs"]}
        return DecodedEvent(name=abi["name"], args=args, log=log)


_ONE_WORD_TYPE = re.compile(r"u?int\d*|address|bool|bytes\d+")


def _is_one_word(type_: str) -> bool:
    return _ONE_WORD_TYPE.fullmatch(type_) is not None


def _check_word_sizes(abi: Mapping[str, Any], log: ChainLog, plain_count: int) -> None:
    """Reject short topics and data, because a decoder may pad them instead of failing.

    NOTE: ape replaces eth_abi's global `uint` decoder with one that pads short input, so
    `eth_abi.decode` alone accepts truncated logs in any process that imported ape. Every
    Sportsbook event argument is a static type of one 32-byte word, which this check
    relies on.
    """
    short_topics = [index for index, topic in enumerate(log.topics) if len(topic) != 32]
    if short_topics:
        raise EventDecodeError(f"{abi['name']} log {log.tx_hash}:{log.log_index} has topics {short_topics} that are not 32 bytes")
    if len(log.data) != 32 * plain_count:
        raise EventDecodeError(
            f"{abi['name']} log {log.tx_hash}:{log.log_index} does not decode: data is {len(log.data)} bytes, expected {32 * plain_count}"
        )


def _normalize(type_: str, value: Any) -> Any:
    if type_ == "address":
        return to_checksum_address(value)
    return value
