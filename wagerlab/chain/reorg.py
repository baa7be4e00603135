"""Parameters of `anvil_reorg(depth, [[tx, blockOffset], ...])`, checked before the chain
changes.

anvil's semantics (anvil 1.7.1): the last `depth` blocks are replaced by `depth` new
blocks on top of the block below them. `blockOffset` 0 is the first new block. A
transaction is either signed raw bytes (0x hex) or a transaction object sent from a dev
account or an impersonated one. Transactions of the replaced blocks that are not listed
are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from wagerlab.chain import rpc
from wagerlab.chain.errors import InvalidParams

ReorgTransaction = bytes | dict[str, Any]


@dataclass(frozen=True)
class ReorgPlan:
    """How many blocks to replace and the transactions of each new block, oldest first."""

    depth: int
    blocks: tuple[tuple[ReorgTransaction, ...], ...]


def decode_count(value: Any, name: str) -> int:
    """Decode a count given as a JSON integer or a hex quantity."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return rpc.decode_quantity(value, name)


def parse_reorg(params: Sequence[Any], head: int) -> ReorgPlan:
    """Decode and check `anvil_reorg` parameters against a chain whose head is `head`."""
    depth = decode_count(rpc.param(params, 0, "depth"), "depth")
    if not 1 <= depth <= head:
        raise InvalidParams(
            "depth", f"expected 1..{head} (blocks above genesis), got {depth}"
        )
    pairs = rpc.param(params, 1, "txBlockPairs", [])
    if not isinstance(pairs, list):
        raise InvalidParams("txBlockPairs", f"expected a list of [tx, blockOffset] pairs, got {pairs!r}")

    blocks: list[list[ReorgTransaction]] = [[] for _ in range(depth)]
    for index, pair in enumerate(pairs):
        name = f"txBlockPairs[{index}]"
        if not isinstance(pair, list) or len(pair) != 2:
            raise InvalidParams(name, f"expected a [tx, blockOffset] pair, got {pair!r}")
        offset = decode_count(pair[1], f"{name}.blockOffset")
        if offset >= depth:
            raise InvalidParams(
                f"{name}.blockOffset", f"expected 0..{depth - 1} for depth {depth}, got {offset}"
            )
        blocks[offset].append(_decode_transaction(pair[0], f"{name}.tx"))
    return ReorgPlan(depth=depth, blocks=tuple(tuple(block) for block in blocks))


def _decode_transaction(value: Any, name: str) -> ReorgTransaction:
    if isinstance(value, dict):
        return value
    raw = rpc.decode_data(value, name)
    if not raw:
        raise InvalidParams(name, "empty transaction data")
    return raw
