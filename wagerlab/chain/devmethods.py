"""Development methods of the node: mining and time control, snapshots, balances,
impersonation and reorgs, under the method names anvil and Hardhat use.

`DevMethods` is a base class of `Node` and runs under the node's lock like every other
handler; it uses the node's chain access and mining helpers.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

from eth_utils import to_checksum_address

from wagerlab.chain import rpc
from wagerlab.chain.errors import InvalidParams, NodeError
from wagerlab.chain.reorg import ReorgTransaction, decode_count, parse_reorg

if TYPE_CHECKING:
    from wagerlab.chain.node import BlockRecord, Node

logger = logging.getLogger(__name__)

Params = Sequence[Any]


class DevMethods:
    """The `evm_*`, `anvil_*` and `hardhat_*` handlers of `Node`.

    The attributes below are set by `Node.__init__`; the chain access and mining helpers
    (`_chain`, `_head`, `_mine`, `_apply`, ...) are `Node` methods.
    """

    _backend: Any
    _automine: bool
    _interval_miner: IntervalMiner | None
    _snapshots: dict[int, bytes]
    _next_snapshot_id: int
    _time_offset: int
    _next_timestamp: int | None
    _impersonated: set[bytes]
    _auto_impersonate: bool
    balance_edits: dict[int, list[tuple[bytes, int]]]

    # -- development methods ----------------------------------------------------------

    def _evm_mine(self, params: Params) -> str:
        timestamp = rpc.param(params, 0, "timestamp", None)
        if isinstance(timestamp, dict):
            timestamp = timestamp.get("timestamp")
        if timestamp is not None:
            self._set_next_timestamp(_decode_seconds(timestamp, "timestamp"))
        self._mine()
        return "0x0"

    def _evm_snapshot(self, params: Params) -> str:
        snapshot_id = self._next_snapshot_id
        self._next_snapshot_id += 1
        self._snapshots[snapshot_id] = self._backend.take_snapshot()
        logger.info("took snapshot %d at block %d", snapshot_id, self._head().block_number)
        return rpc.quantity(snapshot_id)

    def _evm_revert(self, params: Params) -> bool:
        snapshot_id = rpc.decode_quantity(rpc.param(params, 0, "snapshotId"), "snapshotId")
        block_hash = self._snapshots.get(snapshot_id)
        if block_hash is None:
            logger.warning("evm_revert: snapshot %d not found", snapshot_id)
            return False
        # Reverting consumes the snapshot and every later one, as in ganache and anvil.
        for later_id in [i for i in self._snapshots if i >= snapshot_id]:
            del self._snapshots[later_id]
        self._set_head(block_hash)
        self._next_timestamp = None
        self._drop_balance_edits_after(self._head().block_number)
        logger.info("reverted to snapshot %d at block %d", snapshot_id, self._head().block_number)
        return True

    def _evm_increase_time(self, params: Params) -> str:
        seconds = _decode_seconds(rpc.param(params, 0, "seconds"), "seconds")
        # Blocks can run ahead of the clock (each is at least 1 s after its parent), so
        # the offset also covers `seconds` past the latest block's timestamp.
        behind_latest = self._head().timestamp - int(time.time())
        self._time_offset = max(self._time_offset, behind_latest) + seconds
        logger.info("time offset is now %d s", self._time_offset)
        return rpc.quantity(self._time_offset)

    def _evm_set_next_block_timestamp(self, params: Params) -> None:
        self._set_next_timestamp(_decode_seconds(rpc.param(params, 0, "timestamp"), "timestamp"))

    def _set_next_timestamp(self, timestamp: int) -> None:
        latest = self._head().timestamp
        if timestamp <= latest:
            raise InvalidParams(
                "timestamp",
                f"{timestamp} is not after the latest block's timestamp {latest}",
            )
        self._next_timestamp = timestamp
        # Later blocks continue from the new time, as anvil does.
        self._time_offset = timestamp - int(time.time())

    # -- mining control ---------------------------------------------------------------

    def _evm_set_automine(self, params: Params) -> None:
        self._automine = rpc.decode_bool(rpc.param(params, 0, "enabled"), "enabled")
        logger.info("automine %s", "on" if self._automine else "off")
        if self._automine and self._chain.header.gas_used > 0:
            # Transactions sent while automine was off are mined now, as anvil does.
            self._mine()

    def _evm_set_interval_mining(self, params: Params) -> None:
        seconds = decode_count(rpc.param(params, 0, "seconds"), "seconds")
        if self._interval_miner is not None:
            self._interval_miner.stop()
            self._interval_miner = None
        if seconds > 0:
            self._interval_miner = IntervalMiner(self, seconds)
            self._interval_miner.start()
        logger.info("interval mining every %d s (0 is off)", seconds)

    def _anvil_mine(self, params: Params) -> None:
        count = decode_count(rpc.param(params, 0, "blocks", 1), "blocks")
        interval = decode_count(rpc.param(params, 1, "interval", 0), "interval")
        if count < 1:
            raise InvalidParams("blocks", f"expected at least 1 block, got {count}")
        for _ in range(count):
            if interval:
                self._next_timestamp = self._head().timestamp + interval
            self._mine()

    def _anvil_set_balance(self, params: Params) -> None:
        address = rpc.decode_address(rpc.param(params, 0, "address"), "address")
        balance = rpc.decode_quantity(rpc.param(params, 1, "balance"), "balance")
        self._write_balance(address, balance)
        number = self._chain.header.block_number
        self.balance_edits.setdefault(number, []).append((address, balance))
        if self._automine:
            # NOTE: py-evm reads state only at mined blocks, so the change takes effect in
            # a new block; anvil changes the balance without mining.
            self._mine()

    def _write_balance(self, address: bytes, balance: int) -> None:
        chain = self._chain
        state = chain.get_vm(chain.header).state
        state.set_balance(address, balance)
        state.persist()
        chain.header = chain.header.copy(state_root=state.state_root)

    # -- impersonation ----------------------------------------------------------------

    def _anvil_impersonate_account(self, params: Params) -> None:
        address = rpc.decode_address(rpc.param(params, 0, "address"), "address")
        self._impersonated.add(address)
        logger.info("impersonating %s", to_checksum_address(address))

    def _anvil_stop_impersonating_account(self, params: Params) -> None:
        address = rpc.decode_address(rpc.param(params, 0, "address"), "address")
        # Like anvil, stopping an address that is not impersonated is no error.
        self._impersonated.discard(address)
        logger.info("stopped impersonating %s", to_checksum_address(address))

    def _anvil_auto_impersonate_account(self, params: Params) -> None:
        self._auto_impersonate = rpc.decode_bool(rpc.param(params, 0, "enabled"), "enabled")
        logger.info("impersonating every sender: %s", "on" if self._auto_impersonate else "off")

    # -- reorgs -----------------------------------------------------------------------

    def _anvil_reorg(self, params: Params) -> None:
        head = self._head()
        plan = parse_reorg(params, head.block_number)
        fork_number = head.block_number - plan.depth
        chain = self._chain
        dropped = [
            self._record_for_header(chain.get_canonical_block_header_by_number(number))
            for number in range(fork_number + 1, head.block_number + 1)
        ]
        fork_hash = chain.get_canonical_block_header_by_number(fork_number).hash

        self._set_head(fork_hash)
        try:
            new_hashes = self._mine_replacements(dropped, plan.blocks)
        except NodeError:
            logger.info("anvil_reorg failed; restoring the head at block %d", head.block_number)
            self._set_head(head.hash)
            raise
        finally:
            self._next_timestamp = None
        self._drop_balance_edits_after(fork_number)

        self._notify_removed(dropped)
        for block_hash in new_hashes:
            self._notify(block_hash)
        logger.info(
            "reorg replaced blocks %d..%d with %d listed transactions",
            fork_number + 1,
            head.block_number,
            sum(len(block) for block in plan.blocks),
        )

    def _mine_replacements(
        self, dropped: Sequence[BlockRecord], blocks: Sequence[Sequence[ReorgTransaction]]
    ) -> list[bytes]:
        """Mine one block per dropped block, at the dropped block's timestamp."""
        new_hashes = []
        for record, transactions in zip(dropped, blocks):
            self._next_timestamp = record.block.header.timestamp
            self._prepare_pending_header()
            for transaction in transactions:
                self._apply(self._reorg_sender(transaction))
            new_hashes.append(self._mine(notify=False))
        return new_hashes

    def _reorg_sender(self, transaction: ReorgTransaction) -> Callable[[], bytes]:
        if isinstance(transaction, bytes):
            return self._prepare_raw(transaction, "txBlockPairs.tx")
        return self._prepare_unsigned(self._decode_send(transaction, "txBlockPairs.tx"))

    def _drop_balance_edits_after(self, number: int) -> None:
        for edited in [n for n in self.balance_edits if n > number]:
            del self.balance_edits[edited]


class IntervalMiner:
    """A daemon thread that mines a block every `seconds` seconds through `node.request`."""

    def __init__(self, node: Node, seconds: int) -> None:
        self._node = node
        self._seconds = seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chain-interval-miner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(self._seconds):
            try:
                self._node.request("evm_mine", [])
            except Exception:
                logger.exception("interval mining failed; trying again in %d s", self._seconds)


def _decode_seconds(value: Any, name: str) -> int:
    """Decode a number of seconds given as a JSON integer or a hex quantity."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return rpc.decode_quantity(value, name)
