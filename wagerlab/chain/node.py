"""The chain behind the JSON-RPC server: eth-tester's py-evm backend plus the methods of
an Ethereum node, with automining, time control, snapshots and block notifications.

`Node.request(method, params)` is thread-safe: one lock serializes every call into
py-evm, which is not thread-safe. Every transaction is mined into its own block as it
arrives. After each new block the node calls its block listeners (the WebSocket
subscription hub) with the encoded header and logs, computed once per block.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Callable, Final, Protocol, Sequence

import rlp
from eth.abc import BlockAPI, BlockHeaderAPI, ComputationAPI, ReceiptAPI
from eth.constants import GENESIS_PARENT_HASH
from eth.exceptions import (
    BlockNotFound as EVMBlockNotFound,
    HeaderNotFound,
    Revert,
    TransactionNotFound as EVMTransactionNotFound,
    VMError,
)
from eth.vm.spoof import SpoofTransaction
from eth_bloom import BloomFilter
from eth_tester import PyEVMBackend
from eth_utils import ValidationError as EthUtilsValidationError
from eth_utils import keccak, to_checksum_address

from wagerlab.chain import rpc
from wagerlab.chain.accounts import DEV_ACCOUNT_COUNT
from wagerlab.chain.errors import (
    ExecutionReverted,
    InvalidParams,
    MethodNotFound,
    ResourceNotFound,
    StateFileError,
    TransactionRejected,
)
from wagerlab.chain.filters import FilterRegistry
from wagerlab.chain.devmethods import DevMethods, IntervalMiner
from wagerlab.chain.impersonation import (
    ImpersonationPragueVM,
    impersonated_sender,
    sign_as,
)
from wagerlab.chain.params import check_param_count
from wagerlab.chain.txrequest import FEE_FIELDS, GAS_PRICE_TYPES, decode_transaction_request

logger = logging.getLogger(__name__)

CLIENT_VERSION: Final = "wagerlab-chain/0.1.0/py-evm"
PRIORITY_FEE: Final = 10**9
ZERO_ADDRESS: Final = b"\x00" * 20
BLOCK_CACHE_SIZE: Final = 512

Params = Sequence[Any]
Handler = Callable[[Params], Any]

# Errors py-evm and rlp raise for a transaction that cannot be applied at all (bad
# signature, nonce, balance, encoding). The transaction is then rejected, not mined.
_REJECTION_ERRORS: Final = (EthUtilsValidationError, rlp.DecodingError, ValueError, TypeError)


@dataclass(frozen=True)
class LogEntry:
    """One log of a mined block: raw fields for filtering, the wire encoding for output."""

    address: bytes
    topics: tuple[bytes, ...]
    wire: dict[str, Any]


@dataclass
class BlockRecord:
    """A mined block with its receipts and encoded logs, cached by block hash."""

    block: BlockAPI
    receipts: tuple[ReceiptAPI, ...]
    logs_by_tx: tuple[tuple[LogEntry, ...], ...]
    wire: dict[bool, dict[str, Any]]

    @property
    def logs(self) -> list[LogEntry]:
        return [entry for tx_logs in self.logs_by_tx for entry in tx_logs]


@dataclass(frozen=True)
class NewBlock:
    """The notification data subscribers receive for one new block."""

    number: int
    header: dict[str, Any]
    logs: tuple[LogEntry, ...]


class BlockListener(Protocol):
    """Receives chain events on the node's thread, with the node's lock held."""

    def wants_blocks(self) -> bool: ...

    def wants_logs(self) -> bool: ...

    def wants_pending(self) -> bool: ...

    def on_block(self, event: NewBlock) -> None: ...

    def on_removed_logs(self, logs: tuple[LogEntry, ...]) -> None:
        """Receive the logs of blocks a reorg dropped, newest first, marked `removed: true`."""

    def on_pending_transaction(self, tx_hash: bytes) -> None: ...


class Node(DevMethods):
    """An automining development chain that serves Ethereum JSON-RPC methods."""

    def __init__(self, accounts: int = DEV_ACCOUNT_COUNT, genesis_timestamp: int | None = None) -> None:
        if accounts < 1:
            raise ValueError(f"a node needs at least one dev account, got accounts={accounts!r}")
        genesis_state = PyEVMBackend.generate_genesis_state(num_accounts=accounts)
        overrides = None if genesis_timestamp is None else {"timestamp": genesis_timestamp}
        genesis_parameters = PyEVMBackend.generate_genesis_params(overrides=overrides)
        self._backend = PyEVMBackend(
            genesis_parameters=genesis_parameters,
            genesis_state=genesis_state,
            vm_configuration=((0, ImpersonationPragueVM),),
        )
        self._lock = threading.RLock()
        self._block_cache: OrderedDict[bytes, BlockRecord] = OrderedDict()
        self._snapshots: dict[int, bytes] = {}
        self._next_snapshot_id = 1
        self._time_offset = 0
        self._next_timestamp: int | None = None
        self._filters = FilterRegistry()
        self._listeners: list[BlockListener] = [self._filters]
        self._automine = True
        self._interval_miner: IntervalMiner | None = None
        self._impersonated: set[bytes] = set()
        self._auto_impersonate = False
        # Balance changes by anvil_setBalance, keyed by the number of the block that holds
        # them, so that a state dump can replay them.
        self.balance_edits: dict[int, list[tuple[bytes, int]]] = {}
        self._accounts = tuple(self._backend.get_accounts())
        self.account_count = accounts
        self.chain_id: int = self._backend.chain.chain_id
        self._methods: dict[str, Handler] = self._method_table()

    # -- public API -------------------------------------------------------------------

    @property
    def methods(self) -> frozenset[str]:
        return frozenset(self._methods)

    def add_block_listener(self, listener: BlockListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_block_listener(self, listener: BlockListener) -> None:
        with self._lock:
            self._listeners.remove(listener)

    def request(self, method: str, params: Params) -> Any:
        """Run one JSON-RPC method and return its encoded result; raises `NodeError`."""
        handler = self._methods.get(method)
        if handler is None:
            raise MethodNotFound(method)
        check_param_count(method, params)
        with self._lock:
            return handler(params)

    def clear_filters(self) -> int:
        """Uninstall every filter, as a node restart would; return how many there were."""
        with self._lock:
            return self._filters.clear()

    def close(self) -> None:
        """Stop interval mining; the chain itself needs no cleanup."""
        with self._lock:
            miner, self._interval_miner = self._interval_miner, None
        if miner is not None:
            miner.stop()

    # -- method table -----------------------------------------------------------------

    def _method_table(self) -> dict[str, Handler]:
        return {
            "web3_clientVersion": lambda params: CLIENT_VERSION,
            "net_version": lambda params: str(self.chain_id),
            "net_listening": lambda params: True,
            "eth_chainId": lambda params: rpc.quantity(self.chain_id),
            "eth_syncing": lambda params: False,
            "eth_blockNumber": self._block_number,
            "eth_accounts": lambda params: [rpc.data(a) for a in self._accounts],
            "eth_gasPrice": self._gas_price,
            "eth_maxPriorityFeePerGas": lambda params: rpc.quantity(PRIORITY_FEE),
            "eth_feeHistory": self._fee_history,
            "eth_getBalance": self._get_balance,
            "eth_getTransactionCount": self._get_transaction_count,
            "eth_getCode": self._get_code,
            "eth_getStorageAt": self._get_storage_at,
            "eth_call": self._call,
            "eth_estimateGas": self._estimate_gas,
            "eth_sendTransaction": self._send_transaction,
            "eth_sendRawTransaction": self._send_raw_transaction,
            "eth_getTransactionByHash": self._get_transaction_by_hash,
            "eth_getTransactionReceipt": self._get_transaction_receipt,
            "eth_getBlockByNumber": self._get_block_by_number,
            "eth_getBlockByHash": self._get_block_by_hash,
            "eth_getLogs": self._get_logs,
            "eth_getBlockTransactionCountByNumber": lambda params: self._block_count(params, "number", "transactions"),
            "eth_getBlockTransactionCountByHash": lambda params: self._block_count(params, "hash", "transactions"),
            "eth_getUncleCountByBlockNumber": lambda params: self._block_count(params, "number", "uncles"),
            "eth_getUncleCountByBlockHash": lambda params: self._block_count(params, "hash", "uncles"),
            "eth_getTransactionByBlockNumberAndIndex": lambda params: self._transaction_at(params, "number"),
            "eth_getTransactionByBlockHashAndIndex": lambda params: self._transaction_at(params, "hash"),
            "eth_getBlockReceipts": self._get_block_receipts,
            "eth_coinbase": lambda params: rpc.data(ZERO_ADDRESS),
            "eth_hashrate": lambda params: rpc.quantity(0),
            "net_peerCount": lambda params: rpc.quantity(0),
            "web3_sha3": lambda params: rpc.data(keccak(rpc.decode_data(rpc.param(params, 0, "data"), "data"))),
            "eth_newFilter": self._new_filter,
            "eth_newBlockFilter": lambda params: self._filters.new_block_filter(),
            "eth_newPendingTransactionFilter": lambda params: self._filters.new_pending_filter(),
            "eth_getFilterChanges": self._get_filter_changes,
            "eth_getFilterLogs": self._get_filter_logs,
            "eth_uninstallFilter": self._uninstall_filter,
            "evm_mine": self._evm_mine,
            "evm_snapshot": self._evm_snapshot,
            "evm_revert": self._evm_revert,
            "evm_increaseTime": self._evm_increase_time,
            "evm_setNextBlockTimestamp": self._evm_set_next_block_timestamp,
            "evm_setAutomine": self._evm_set_automine,
            "evm_setIntervalMining": self._evm_set_interval_mining,
            "anvil_mine": self._anvil_mine,
            "hardhat_mine": self._anvil_mine,
            "anvil_setBalance": self._anvil_set_balance,
            "hardhat_setBalance": self._anvil_set_balance,
            "anvil_reorg": self._anvil_reorg,
            "anvil_impersonateAccount": self._anvil_impersonate_account,
            "hardhat_impersonateAccount": self._anvil_impersonate_account,
            "anvil_stopImpersonatingAccount": self._anvil_stop_impersonating_account,
            "hardhat_stopImpersonatingAccount": self._anvil_stop_impersonating_account,
            "anvil_autoImpersonateAccount": self._anvil_auto_impersonate_account,
        }

    # -- chain access -----------------------------------------------------------------

    @property
    def _chain(self) -> Any:
        # NOTE: PyEVMBackend replaces its chain object when it reverts to genesis, so
        # never keep a reference to it.
        return self._backend.chain

    def _head(self) -> BlockHeaderAPI:
        return self._chain.get_canonical_head()

    def _set_head(self, block_hash: bytes) -> None:
        """Make the mined block `block_hash` the canonical head, with a new pending block on it.

        eth-tester's `revert_to_snapshot` executes the block again and rejects it when the
        state root differs, as it does for every block that contains an `anvil_setBalance`
        edit. This method keeps the stored block and its state instead.
        """
        chain = self._chain
        header = chain.get_block_header_by_hash(block_hash)
        if header.block_number == 0:
            self._backend.revert_to_snapshot(block_hash)
            return
        chaindb = chain.chaindb
        # NOTE: private py-evm 0.12 helpers, as eth-tester 0.13 uses them. The second
        # points each transaction hash of a block that is canonical again back to it.
        new_canonical, _ = chaindb._set_as_canonical_chain_head(chaindb.db, header, GENESIS_PARENT_HASH)
        for canonical in new_canonical:
            for index, tx in enumerate(self._record_for_header(canonical).block.transactions):
                chaindb._add_transaction_to_canonical_chain(chaindb.db, tx.hash, canonical, index)
        chain.header = chain.create_header_from_parent(header)

    def _header_for(self, block_id: rpc.BlockId | bytes, name: str) -> BlockHeaderAPI:
        """Resolve a block id to a header; raises `ResourceNotFound` for an unknown block."""
        chain = self._chain
        try:
            if isinstance(block_id, bytes):
                return chain.get_block_header_by_hash(block_id)
            if block_id == "pending":
                self._prepare_pending_header()
                return chain.header
            if block_id == "earliest":
                return chain.get_canonical_block_header_by_number(0)
            if isinstance(block_id, int):
                return chain.get_canonical_block_header_by_number(block_id)
        except (HeaderNotFound, EVMBlockNotFound) as err:
            raise ResourceNotFound(f"{name}: block {_describe(block_id)} not found") from err
        return self._head()

    def _state_at(self, params: Params, index: int, name: str) -> Any:
        block_id = rpc.decode_block_id(rpc.param(params, index, name, "latest"), name)
        header = self._header_for(block_id, name)
        return self._chain.get_vm(at_header=header).state

    def _record(self, block: BlockAPI) -> BlockRecord:
        record = self._block_cache.get(block.hash)
        if record is not None:
            self._block_cache.move_to_end(block.hash)
            return record
        record = _build_record(block, self._chain.chaindb)
        self._block_cache[block.hash] = record
        if len(self._block_cache) > BLOCK_CACHE_SIZE:
            self._block_cache.popitem(last=False)
        return record

    def _record_for_header(self, header: BlockHeaderAPI) -> BlockRecord:
        record = self._block_cache.get(header.hash)
        if record is not None:
            return record
        return self._record(self._chain.get_block_by_header(header))

    # -- time and mining --------------------------------------------------------------

    def _prepare_pending_header(self) -> None:
        """Set the pending block's timestamp from the clock, the offset and any override."""
        chain = self._chain
        if chain.header.gas_used > 0:
            # The pending block already holds transactions that ran at its timestamp.
            return
        if self._next_timestamp is not None:
            timestamp = self._next_timestamp
        else:
            timestamp = max(chain.header.timestamp, int(time.time()) + self._time_offset)
        if timestamp != chain.header.timestamp:
            chain.header = chain.header.copy(timestamp=timestamp)

    def _mine(self, notify: bool = True) -> bytes:
        self._prepare_pending_header()
        (block_hash,) = self._backend.mine_blocks(1)
        self._next_timestamp = None
        if notify:
            self._notify(block_hash)
        return block_hash

    def _notify(self, block_hash: bytes) -> None:
        if not any(listener.wants_blocks() for listener in self._listeners):
            return
        record = self._record(self._chain.get_block_by_hash(block_hash))
        wants_logs = any(listener.wants_logs() for listener in self._listeners)
        event = NewBlock(
            number=record.block.number,
            header=rpc.encode_header(record.block.header),
            logs=tuple(record.logs) if wants_logs else (),
        )
        for listener in list(self._listeners):
            try:
                listener.on_block(event)
            except Exception:
                logger.exception("block listener %r failed on block %d", listener, event.number)

    def _notify_pending(self, tx_hash: bytes) -> None:
        for listener in list(self._listeners):
            if not listener.wants_pending():
                continue
            try:
                listener.on_pending_transaction(tx_hash)
            except Exception:
                logger.exception("block listener %r failed on pending tx %s", listener, tx_hash.hex())

    def _notify_removed(self, records: Sequence[BlockRecord]) -> None:
        removed = tuple(
            replace(entry, wire={**entry.wire, "removed": True})
            for record in reversed(records)
            for entry in reversed(record.logs)
        )
        if not removed:
            return
        for listener in list(self._listeners):
            if not listener.wants_logs():
                continue
            try:
                listener.on_removed_logs(removed)
            except Exception:
                logger.exception("block listener %r failed on %d removed logs", listener, len(removed))

    def _apply_and_mine(self, apply: Callable[[], bytes]) -> str:
        """Apply a transaction to the pending block, and mine it unless automine is off."""
        self._prepare_pending_header()
        tx_hash = self._apply(apply)
        self._notify_pending(tx_hash)
        if self._automine:
            block_hash = self._mine()
            logger.debug("mined tx %s in block %s", tx_hash.hex(), block_hash.hex())
        return rpc.data(tx_hash)

    def _apply(self, apply: Callable[[], bytes]) -> bytes:
        try:
            return apply()
        except _REJECTION_ERRORS as err:
            logger.info("rejected transaction: %s", err)
            raise TransactionRejected(str(err)) from err

    # -- simple reads -----------------------------------------------------------------

    def _block_number(self, params: Params) -> str:
        return rpc.quantity(self._head().block_number)

    def _gas_price(self, params: Params) -> str:
        base_fee = self._chain.header.base_fee_per_gas
        return rpc.quantity(base_fee + PRIORITY_FEE)

    def _get_balance(self, params: Params) -> str:
        address = rpc.decode_address(rpc.param(params, 0, "address"), "address")
        return rpc.quantity(self._state_at(params, 1, "block").get_balance(address))

    def _get_transaction_count(self, params: Params) -> str:
        address = rpc.decode_address(rpc.param(params, 0, "address"), "address")
        return rpc.quantity(self._state_at(params, 1, "block").get_nonce(address))

    def _get_code(self, params: Params) -> str:
        address = rpc.decode_address(rpc.param(params, 0, "address"), "address")
        return rpc.data(self._state_at(params, 1, "block").get_code(address))

    def _get_storage_at(self, params: Params) -> str:
        address = rpc.decode_address(rpc.param(params, 0, "address"), "address")
        slot = rpc.decode_quantity(rpc.param(params, 1, "slot"), "slot")
        value = self._state_at(params, 2, "block").get_storage(address, slot)
        return rpc.data(value.to_bytes(32, "big"))

    def _fee_history(self, params: Params) -> dict[str, Any]:
        count = rpc.decode_quantity(rpc.param(params, 0, "blockCount"), "blockCount")
        newest_id = rpc.decode_block_id(rpc.param(params, 1, "newestBlock"), "newestBlock")
        percentiles = rpc.param(params, 2, "rewardPercentiles", [])
        if not isinstance(percentiles, list) or not all(
            isinstance(p, (int, float)) and 0 <= p <= 100 for p in percentiles
        ):
            raise InvalidParams("rewardPercentiles", f"expected numbers 0..100, got {percentiles!r}")
        if not 1 <= count <= 1024:
            raise InvalidParams("blockCount", f"expected 1..1024 blocks, got {count}")
        if newest_id == "pending":
            newest_id = "latest"
        newest = self._header_for(newest_id, "newestBlock")
        return self._fee_history_from(newest, count, percentiles)

    def _fee_history_from(
        self, newest: BlockHeaderAPI, count: int, percentiles: list[float]
    ) -> dict[str, Any]:
        oldest_number = max(0, newest.block_number - count + 1)
        base_fees: list[str] = []
        ratios: list[float] = []
        rewards: list[list[str]] = []
        chain = self._chain
        for number in range(oldest_number, newest.block_number + 1):
            header = chain.get_canonical_block_header_by_number(number)
            base_fees.append(rpc.quantity(header.base_fee_per_gas))
            ratios.append(header.gas_used / header.gas_limit)
            if percentiles:
                rewards.append(self._block_rewards(header, percentiles))
        next_header = chain.create_header_from_parent(newest)
        base_fees.append(rpc.quantity(next_header.base_fee_per_gas))
        history: dict[str, Any] = {
            "oldestBlock": rpc.quantity(oldest_number),
            "baseFeePerGas": base_fees,
            "gasUsedRatio": ratios,
        }
        if percentiles:
            history["reward"] = rewards
        return history

    def _block_rewards(self, header: BlockHeaderAPI, percentiles: list[float]) -> list[str]:
        block = self._record_for_header(header).block
        tips = sorted(
            rpc.effective_gas_price(tx, header.base_fee_per_gas) - header.base_fee_per_gas
            for tx in block.transactions
        )
        if not tips:
            return [rpc.quantity(0) for _ in percentiles]
        return [rpc.quantity(tips[min(len(tips) - 1, int(len(tips) * p / 100))]) for p in percentiles]

    # -- calls and gas estimates ------------------------------------------------------

    def _decode_call(self, params: Params) -> dict[str, Any]:
        """Decode the call object of eth_call or eth_estimateGas, from the zero address by default."""
        tx = decode_transaction_request(rpc.param(params, 0, "transaction"), "transaction")
        tx.setdefault("from", ZERO_ADDRESS)
        return tx

    def _call(self, params: Params) -> str:
        tx = self._decode_call(params)
        block_id = rpc.decode_block_id(rpc.param(params, 1, "block", "latest"), "block")
        header = self._header_for(block_id, "block")
        computation = self._execute_call(tx, header)
        if computation.is_error:
            raise _call_error(computation.error)
        return rpc.data(computation.output)

    def _execute_call(self, tx: dict[str, Any], header: BlockHeaderAPI) -> ComputationAPI:
        """Run a call on the state after `header` and throw the state changes away."""
        tx.setdefault("gas", header.gas_limit)
        tx.setdefault("nonce", 0)
        fees_given = any(name in tx for name in FEE_FIELDS)
        if not fees_given:
            tx["max_fee_per_gas"] = header.base_fee_per_gas
            tx["max_priority_fee_per_gas"] = 0
        state = self._chain.get_vm(at_header=header).state
        tx["nonce"] = state.get_nonce(tx["from"])
        unsigned = self._unsigned_transaction(tx)
        snapshot = state.snapshot()
        try:
            if not fees_given:
                # NOTE: like geth, a call without fee fields costs the sender nothing; here
                # the fee budget is lent to the sender for the duration of the call.
                budget = tx["gas"] * tx["max_fee_per_gas"]
                state.delta_balance(tx["from"], budget)
            return state.apply_transaction(SpoofTransaction(unsigned, from_=tx["from"]))
        except _REJECTION_ERRORS as err:
            raise TransactionRejected(str(err)) from err
        finally:
            state.revert(snapshot)

    def _unsigned_transaction(self, tx: dict[str, Any]) -> Any:
        try:
            # NOTE: a private helper of eth-tester 0.13 (pinned in pyproject.toml); it fills
            # the chain id and access list and picks the transaction type from the fields.
            return self._backend._get_normalized_and_unsigned_evm_transaction(tx)
        except _REJECTION_ERRORS as err:
            raise InvalidParams("transaction", str(err)) from err

    def _estimate_gas(self, params: Params) -> str:
        tx = self._decode_call(params)
        block_id = rpc.decode_block_id(rpc.param(params, 1, "block", "latest"), "block")
        header = self._header_for(block_id, "block")
        return rpc.quantity(self._estimate(tx, header))

    def _estimate(self, tx: dict[str, Any], header: BlockHeaderAPI) -> int:
        chain = self._chain
        tx.pop("gas", None)
        if not any(name in tx for name in FEE_FIELDS):
            # The estimator runs in a block with base fee 0, so a zero fee lets an
            # unfunded sender estimate, as geth allows.
            tx["max_fee_per_gas"] = 0
            tx["max_priority_fee_per_gas"] = 0
        tx["nonce"] = chain.get_vm(at_header=header).state.get_nonce(tx["from"])
        unsigned = self._unsigned_transaction({**tx, "gas": header.gas_limit})
        try:
            return chain.estimate_gas(SpoofTransaction(unsigned, from_=tx["from"]), header)
        except VMError as err:
            raise _call_error(err) from err
        except _REJECTION_ERRORS as err:
            raise TransactionRejected(str(err)) from err

    # -- transactions -----------------------------------------------------------------

    def _send_raw_transaction(self, params: Params) -> str:
        raw = rpc.decode_data(rpc.param(params, 0, "transaction"), "transaction")
        if not raw:
            raise InvalidParams("transaction", "empty transaction data")
        return self._apply_and_mine(self._prepare_raw(raw, "transaction"))

    def _send_transaction(self, params: Params) -> str:
        tx = self._decode_send(rpc.param(params, 0, "transaction"), "transaction")
        return self._apply_and_mine(self._prepare_unsigned(tx))

    def _decode_send(self, value: Any, name: str) -> dict[str, Any]:
        """Decode a transaction for the node to sign, from the first dev account by default."""
        tx = decode_transaction_request(value, name)
        if "from" not in tx:
            # anvil 1.7.1 also sends a transaction without `from` from its first dev account.
            tx["from"] = self._accounts[0]
        return tx

    def _prepare_raw(self, raw: bytes, name: str) -> Callable[[], bytes]:
        """Check the signed transaction `raw` and return the function that applies it.

        A transaction with the impersonation marker signature is accepted only while its
        sender is impersonated, as if eth_sendTransaction had been called for it.
        """
        try:
            tx = self._chain.get_transaction_builder().decode(raw)
        except _REJECTION_ERRORS:
            # send_raw_transaction then rejects it with py-evm's message.
            return lambda: self._backend.send_raw_transaction(raw)
        _check_intrinsic_gas(tx)
        self._check_marked_raw(tx, name)
        return lambda: self._backend.send_raw_transaction(raw)

    def _check_marked_raw(self, tx: Any, name: str) -> None:
        sender = impersonated_sender(tx)
        if sender is not None and not self._may_impersonate(sender):
            address = to_checksum_address(sender)
            raise InvalidParams(
                name,
                f"the transaction carries the node's impersonation signature for {address}, "
                f"which is not impersonated; call anvil_impersonateAccount with {address} first",
            )

    def _prepare_unsigned(self, tx: dict[str, Any]) -> Callable[[], bytes]:
        """Check that the node may sign `tx` and return the function that signs and applies it.

        The sender must be a dev account or impersonated, otherwise this raises
        `InvalidParams` (-32602, as anvil 1.7.1 does). Fills in the gas limit and nonce.
        """
        sender = tx["from"]
        is_dev_account = sender in self._accounts
        if not is_dev_account and not self._may_impersonate(sender):
            address = to_checksum_address(sender)
            raise InvalidParams(
                "transaction.from",
                f"no key for {address}: it is not one of the node's dev accounts and not "
                f"impersonated; call anvil_impersonateAccount with {address}, or sign the "
                "transaction yourself and send it with eth_sendRawTransaction",
            )
        if tx.get("type") in GAS_PRICE_TYPES and "gas_price" not in tx:
            # Without a fee field eth-tester would build a dynamic fee transaction.
            tx["gas_price"] = self._chain.header.base_fee_per_gas + PRIORITY_FEE
        if "gas" not in tx:
            tx["gas"] = self._estimate(dict(tx), self._head())
        if "nonce" not in tx:
            # The pending block's state counts transactions not mined yet (automine off).
            tx["nonce"] = self._chain.get_vm().state.get_nonce(sender)
        _check_intrinsic_gas(self._unsigned_transaction(tx))
        if is_dev_account:
            return lambda: self._backend.send_transaction(tx)
        return lambda: self._apply_impersonated(tx)

    def _may_impersonate(self, address: bytes) -> bool:
        return self._auto_impersonate or address in self._impersonated

    def _apply_impersonated(self, tx: dict[str, Any]) -> bytes:
        signed = sign_as(self._unsigned_transaction(tx), tx["from"], self.chain_id)
        self._chain.apply_transaction(signed)
        logger.debug("applied tx %s as impersonated %s", signed.hash.hex(), to_checksum_address(tx["from"]))
        return bytes(signed.hash)

    def _locate_transaction(self, params: Params) -> tuple[BlockRecord, int] | None:
        tx_hash = rpc.decode_hash(rpc.param(params, 0, "hash"), "hash")
        chain = self._chain
        try:
            number, index = chain.chaindb.get_transaction_index(tx_hash)
        except EVMTransactionNotFound:
            return None
        # NOTE: py-evm keeps the lookup entries of blocks that evm_revert dropped, so
        # check that the canonical block at that height still holds the transaction.
        if number > self._head().block_number:
            return None
        record = self._record_for_header(chain.get_canonical_block_header_by_number(number))
        transactions = record.block.transactions
        if index >= len(transactions) or transactions[index].hash != tx_hash:
            return None
        return record, index

    def _get_transaction_by_hash(self, params: Params) -> dict[str, Any] | None:
        located = self._locate_transaction(params)
        if located is None:
            return None
        record, index = located
        return rpc.encode_transaction(record.block, record.block.transactions[index], index)

    def _get_transaction_receipt(self, params: Params) -> dict[str, Any] | None:
        located = self._locate_transaction(params)
        if located is None:
            return None
        record, index = located
        logs = [entry.wire for entry in record.logs_by_tx[index]]
        return rpc.encode_receipt(record.block, record.receipts, index, logs)

    # -- blocks and logs --------------------------------------------------------------

    def _get_block_by_number(self, params: Params) -> dict[str, Any] | None:
        block_id = rpc.decode_block_id(rpc.param(params, 0, "block"), "block")
        full = rpc.decode_bool(rpc.param(params, 1, "fullTransactions", False), "fullTransactions")
        if isinstance(block_id, bytes):
            raise InvalidParams("block", "expected a number or tag; use eth_getBlockByHash for a hash")
        if block_id == "pending":
            self._prepare_pending_header()
            block = self._chain.get_block()
            return rpc.encode_block(block, full_transactions=full, size=len(rlp.encode(block)), pending=True)
        try:
            header = self._header_for(block_id, "block")
        except ResourceNotFound:
            return None
        return self._encoded_block(self._record_for_header(header), full)

    def _get_block_by_hash(self, params: Params) -> dict[str, Any] | None:
        block_hash = rpc.decode_hash(rpc.param(params, 0, "hash"), "hash")
        full = rpc.decode_bool(rpc.param(params, 1, "fullTransactions", False), "fullTransactions")
        try:
            header = self._chain.get_block_header_by_hash(block_hash)
        except (HeaderNotFound, EVMBlockNotFound):
            return None
        return self._encoded_block(self._record_for_header(header), full)

    def _encoded_block(self, record: BlockRecord, full: bool) -> dict[str, Any]:
        encoded = record.wire.get(full)
        if encoded is None:
            size = len(rlp.encode(record.block))
            encoded = rpc.encode_block(record.block, full_transactions=full, size=size)
            record.wire[full] = encoded
        return encoded

    def _record_by(self, params: Params, key: str) -> BlockRecord | None:
        """Find the block named by parameter 0, a number or tag (`key` "number") or a hash."""
        raw = rpc.param(params, 0, "hash" if key == "hash" else "block")
        if key == "hash" or (isinstance(raw, str) and len(raw) == 66):
            # eth_getBlockReceipts also takes a block hash in place of the number.
            block_id: rpc.BlockId | bytes = rpc.decode_hash(raw, "hash")
        else:
            block_id = rpc.decode_block_id(raw, "block")
            if block_id == "pending":
                block_id = "latest"
        try:
            header = self._header_for(block_id, key)
        except ResourceNotFound:
            return None
        return self._record_for_header(header)

    def _block_count(self, params: Params, key: str, field: str) -> str | None:
        record = self._record_by(params, key)
        if record is None:
            return None
        items = record.block.transactions if field == "transactions" else record.block.uncles
        return rpc.quantity(len(items))

    def _transaction_at(self, params: Params, key: str) -> dict[str, Any] | None:
        index = rpc.decode_quantity(rpc.param(params, 1, "index"), "index")
        record = self._record_by(params, key)
        if record is None or index >= len(record.block.transactions):
            return None
        return rpc.encode_transaction(record.block, record.block.transactions[index], index)

    def _get_block_receipts(self, params: Params) -> list[dict[str, Any]] | None:
        record = self._record_by(params, "number")
        if record is None:
            return None
        return [
            rpc.encode_receipt(record.block, record.receipts, index, [entry.wire for entry in logs])
            for index, logs in enumerate(record.logs_by_tx)
        ]

    def _get_logs(self, params: Params) -> list[dict[str, Any]]:
        criteria = rpc.decode_object(rpc.param(params, 0, "filter"), "filter")
        log_filter = rpc.decode_log_filter(criteria, "filter")
        headers = self._headers_in_filter(criteria)
        found: list[dict[str, Any]] = []
        for header in headers:
            if not _bloom_may_match(header.bloom, log_filter):
                continue
            for entry in self._record_for_header(header).logs:
                if log_filter.matches(entry.address, entry.topics):
                    found.append(entry.wire)
        return found

    def _headers_in_filter(self, criteria: dict[str, Any]) -> list[BlockHeaderAPI]:
        if criteria.get("blockHash") is not None:
            if criteria.get("fromBlock") is not None or criteria.get("toBlock") is not None:
                raise InvalidParams("filter.blockHash", "cannot be combined with fromBlock or toBlock")
            block_hash = rpc.decode_hash(criteria["blockHash"], "filter.blockHash")
            return [self._header_for(block_hash, "filter.blockHash")]
        first = self._range_end(criteria, "fromBlock")
        last = self._range_end(criteria, "toBlock")
        if first > last:
            raise InvalidParams("filter.fromBlock", f"block {first} is after toBlock {last}")
        chain = self._chain
        return [chain.get_canonical_block_header_by_number(n) for n in range(first, last + 1)]

    def _range_end(self, criteria: dict[str, Any], key: str) -> int:
        block_id = rpc.decode_block_id(criteria.get(key) or "latest", f"filter.{key}")
        head = self._head().block_number
        if isinstance(block_id, bytes):
            raise InvalidParams(f"filter.{key}", "expected a number or tag, not a block hash")
        if block_id == "earliest":
            return 0
        if isinstance(block_id, int):
            return min(block_id, head)
        return head

    # -- filters ----------------------------------------------------------------------

    def _new_filter(self, params: Params) -> str:
        criteria = rpc.decode_object(rpc.param(params, 0, "filter"), "filter")
        log_filter = rpc.decode_log_filter(criteria, "filter")
        # Check the block range now, so a bad filter fails at creation as in geth.
        self._headers_in_filter(criteria)
        return self._filters.new_log_filter(criteria, log_filter)

    def _get_filter_changes(self, params: Params) -> list[Any]:
        return self._filters.changes(rpc.param(params, 0, "filterId"))

    def _get_filter_logs(self, params: Params) -> list[dict[str, Any]]:
        criteria = self._filters.log_criteria(rpc.param(params, 0, "filterId"))
        return self._get_logs([criteria])

    def _uninstall_filter(self, params: Params) -> bool:
        return self._filters.uninstall(rpc.param(params, 0, "filterId"))

    # -- state export and replay ------------------------------------------------------

    def export_blocks(self) -> list[ExportedBlock]:
        """Return every canonical block after genesis as replayable raw transactions."""
        with self._lock:
            chain = self._chain
            blocks = []
            for number in range(1, self._head().block_number + 1):
                block = chain.get_canonical_block_by_number(number)
                blocks.append(
                    ExportedBlock(
                        number=number,
                        timestamp=block.header.timestamp,
                        balance_edits=tuple(self.balance_edits.get(number, ())),
                        transactions=tuple(tx.encode() for tx in block.transactions),
                    )
                )
            return blocks

    def replay_block(self, exported: ExportedBlock) -> None:
        """Mine `exported` again on top of the head: balance edits first, then transactions."""
        with self._lock:
            expected = self._head().block_number + 1
            if exported.number != expected:
                raise StateFileError(f"block {exported.number} cannot follow the head, expected block {expected}")
            self._next_timestamp = exported.timestamp
            self._prepare_pending_header()
            for address, balance in exported.balance_edits:
                self._write_balance(address, balance)
                self.balance_edits.setdefault(exported.number, []).append((address, balance))
            for raw in exported.transactions:
                try:
                    self._apply(lambda: self._backend.send_raw_transaction(raw))
                except TransactionRejected as err:
                    raise StateFileError(f"block {exported.number}: transaction rejected: {err.message}") from err
            self._mine()

    @property
    def genesis_timestamp(self) -> int:
        return int(self._chain.get_canonical_block_header_by_number(0).timestamp)

    @property
    def time_offset(self) -> int:
        return self._time_offset

    @time_offset.setter
    def time_offset(self, seconds: int) -> None:
        with self._lock:
            self._time_offset = seconds


@dataclass(frozen=True)
class ExportedBlock:
    """One block of a state file: its timestamp, anvil_setBalance edits and raw transactions."""

    number: int
    timestamp: int
    balance_edits: tuple[tuple[bytes, int], ...]
    transactions: tuple[bytes, ...]




def _describe(block_id: rpc.BlockId | bytes) -> str:
    if isinstance(block_id, bytes):
        return rpc.data(block_id)
    if isinstance(block_id, int):
        return str(block_id)
    return block_id


def _check_intrinsic_gas(tx: Any) -> None:
    """Reject `tx` when its gas limit does not cover its intrinsic gas, with anvil's wording."""
    intrinsic_gas = tx.intrinsic_gas
    if tx.gas < intrinsic_gas:
        raise TransactionRejected(
            f"intrinsic gas too low: the gas limit {tx.gas} is below the intrinsic gas {intrinsic_gas} "
            f"of this transaction; send a gas limit of at least {intrinsic_gas}, or leave gas "
            "out to have the node estimate it"
        )


def _call_error(error: Exception) -> Exception:
    if isinstance(error, Revert):
        revert_data = error.args[0] if error.args and isinstance(error.args[0], bytes) else b""
        return ExecutionReverted(revert_data, rpc.revert_reason(revert_data))
    return TransactionRejected(f"execution failed: {type(error).__name__}: {error}")


def _bloom_may_match(bloom: int, log_filter: rpc.LogFilter) -> bool:
    if bloom == 0:
        return False
    bloom_filter = BloomFilter(bloom)
    if log_filter.addresses is not None and not any(a in bloom_filter for a in log_filter.addresses):
        return False
    for accepted in log_filter.topics:
        if accepted is not None and not any(topic in bloom_filter for topic in accepted):
            return False
    return True


def _build_record(block: BlockAPI, chaindb: Any) -> BlockRecord:
    receipts = tuple(block.get_receipts(chaindb)) if block.transactions else ()
    logs_by_tx: list[tuple[LogEntry, ...]] = []
    log_index = 0
    for tx_index, (tx, receipt) in enumerate(zip(block.transactions, receipts)):
        entries = []
        for log in receipt.logs:
            topics = tuple(topic.to_bytes(32, "big") for topic in log.topics)
            wire = rpc.encode_log(block, tx, tx_index, log_index, log.address, topics, log.data)
            entries.append(LogEntry(address=log.address, topics=topics, wire=wire))
            log_index += 1
        logs_by_tx.append(tuple(entries))
    return BlockRecord(block=block, receipts=receipts, logs_by_tx=tuple(logs_by_tx), wire={})
