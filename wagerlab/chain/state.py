"""`--state FILE`: save the chain as a JSON journal when the node stops, replay it at start.

py-evm keeps its state in an in-memory trie database, and eth-tester 0.13 offers no
export of it. So the file stores what rebuilds the chain instead: the genesis timestamp,
and per block its timestamp, its `anvil_setBalance` edits and its signed raw transactions,
in order. Loading mines the same blocks again from genesis. Balances, nonces, code, storage, receipts and
transaction hashes come back identical. Block hashes differ, because every mined block
gets a fresh random `mixHash` (prevrandao), and snapshots and filters are not saved.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Final

from wagerlab.chain import rpc
from wagerlab.chain.errors import InvalidParams, StateFileError
from wagerlab.chain.node import ExportedBlock, Node

logger = logging.getLogger(__name__)

STATE_FORMAT: Final = "wagerlab-chain-state"
STATE_VERSION: Final = 1


def dump_state(node: Node, path: Path) -> int:
    """Write the node's chain to `path` atomically; return the number of blocks written."""
    blocks = node.export_blocks()
    document = {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "chainId": node.chain_id,
        "accounts": node.account_count,
        "genesisTimestamp": node.genesis_timestamp,
        "timeOffset": node.time_offset,
        "blocks": [_encode_block(block) for block in blocks],
    }
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, separators=(",", ":")))
    os.replace(temporary, path)
    logger.info("saved %d blocks to %s", len(blocks), path)
    return len(blocks)


def load_state(path: Path, accounts: int) -> Node:
    """Build a node with `accounts` dev accounts and replay the blocks saved in `path`."""
    document = _read(path)
    genesis_timestamp = _integer(document.get("genesisTimestamp"), "genesisTimestamp", path)
    node = Node(accounts=accounts, genesis_timestamp=genesis_timestamp)
    _check_header(document, node, path)
    raw_blocks = document.get("blocks")
    if not isinstance(raw_blocks, list):
        raise StateFileError(f"{path}: 'blocks' must be a list, got {type(raw_blocks).__name__}")
    for index, raw_block in enumerate(raw_blocks):
        try:
            node.replay_block(_decode_block(raw_block, f"blocks[{index}]"))
        except (InvalidParams, StateFileError) as err:
            raise StateFileError(f"{path}: {err}") from err
    node.time_offset = _integer(document.get("timeOffset", 0), "timeOffset", path)
    logger.info("loaded %d blocks from %s", len(raw_blocks), path)
    return node


def _read(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise StateFileError(f"cannot read state file {path}: {err}") from err
    if not isinstance(document, dict):
        raise StateFileError(f"{path}: expected a JSON object, got {type(document).__name__}")
    return document


def _check_header(document: dict[str, Any], node: Node, path: Path) -> None:
    if document.get("format") != STATE_FORMAT or document.get("version") != STATE_VERSION:
        raise StateFileError(
            f"{path}: not a {STATE_FORMAT} version {STATE_VERSION} file "
            f"(format={document.get('format')!r}, version={document.get('version')!r})"
        )
    if document.get("chainId") != node.chain_id:
        raise StateFileError(f"{path}: chain id {document.get('chainId')!r} differs from the node's {node.chain_id}")
    if document.get("accounts") != node.account_count:
        raise StateFileError(
            f"{path}: saved with {document.get('accounts')!r} dev accounts, but the node has "
            f"{node.account_count}; start it with --accounts {document.get('accounts')}"
        )


def _encode_block(block: ExportedBlock) -> dict[str, Any]:
    return {
        "number": block.number,
        "timestamp": block.timestamp,
        "balanceEdits": [[rpc.data(address), rpc.quantity(balance)] for address, balance in block.balance_edits],
        "transactions": [rpc.data(raw) for raw in block.transactions],
    }


def _decode_block(value: Any, name: str) -> ExportedBlock:
    block = rpc.decode_object(value, name)
    edits = block.get("balanceEdits", [])
    transactions = block.get("transactions", [])
    if not isinstance(edits, list) or not isinstance(transactions, list):
        raise StateFileError(f"{name}: balanceEdits and transactions must be lists")
    return ExportedBlock(
        number=_integer(block.get("number"), f"{name}.number", None),
        timestamp=_integer(block.get("timestamp"), f"{name}.timestamp", None),
        balance_edits=tuple(_decode_edit(edit, f"{name}.balanceEdits[{i}]") for i, edit in enumerate(edits)),
        transactions=tuple(rpc.decode_data(raw, f"{name}.transactions[{i}]") for i, raw in enumerate(transactions)),
    )


def _decode_edit(value: Any, name: str) -> tuple[bytes, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise StateFileError(f"{name}: expected [address, balance], got {value!r}")
    return rpc.decode_address(value[0], f"{name}[0]"), rpc.decode_quantity(value[1], f"{name}[1]")


def _integer(value: Any, name: str, path: Path | None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        where = f"{path}: " if path is not None else ""
        raise StateFileError(f"{where}{name} must be an integer, got {value!r}")
    return value
