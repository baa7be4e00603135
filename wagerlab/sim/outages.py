"""Faults that hold for a window of seconds while the run goes on, and the reorg of real blocks.

Each function starts its fault, keeps it for the requested time, ends it even when the
wait is interrupted, and returns a `FaultResult`. That result contains the report's detail
with the numbers of what happened, and whether the fault touched any work at all.
`wagerlab.sim.faults` maps the `[[faults]]` kinds onto them.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import requests
from eth_account._utils.legacy_transactions import encode_transaction, serializable_unsigned_transaction_from_dict
from eth_account.typed_transactions import TypedTransaction
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select
from web3 import Web3
from web3.middleware import Web3Middleware

from wagerlab.chain.accounts import dev_account
from wagerlab.platform.config import PlatformConfig
from wagerlab.platform.db import ChainEvent

logger = logging.getLogger(__name__)

LOCKED_TABLES = ("accounts", "bets", "chain_events", "ledger_entries", "monitor_cursors", "odds", "quotes")
"""The tables every deposit, bet, odds move and applied log writes to; `db_lock` locks them on PostgreSQL."""
REORG_FILLER_ACCOUNT = 8
"""Dev account whose empty transfer makes the first replacement block differ from the block it
replaces; no role, actor or other fault uses it. NOTE: on an external node it must hold ether."""
FILLER_GAS = 21_000
REORG_ATTEMPTS = 3
CONTROL_TIMEOUT_SECONDS = 10.0
CONTROL_ATTEMPTS = 3
INTERNAL_ERROR = -32603
RUNNER_RPC_ATTEMPTS = 10
RELEASE_WATCH_SECONDS = 1.0
"""How long `db_lock` watches for logs applied after it releases the lock, the sign that a writer waited on it."""

_node_faults = threading.Lock()
"""Held through an `rpc_faults` or `duplicate_delivery` window: the node has one set of fault
settings, so a second window waits for the first to end instead of overwriting it."""


@dataclass(frozen=True)
class FaultResult:
    """Outcome of an injected fault: the report's text, whether it was exercised, and the counts that decide it.

    A fault is exercised when it touched some work: a read fell back, a writer waited, a
    notification was duplicated, a job was queued. One that struck while nothing ran
    tested nothing, even though the run passed.
    """

    detail: str
    exercised: bool
    evidence: dict[str, int] = field(default_factory=dict)


class OutageError(Exception):
    """A fault could not be started or ended (the node or the platform rejected the control call)."""


class RetryInternalErrors(Web3Middleware):
    """Send a request again while the node fails it with -32603, so the runner's own reads and
    the other injectors survive an `rpc_faults` window, as the platform must."""

    def wrap_make_request(self, make_request: Callable[..., Any]) -> Callable[..., Any]:
        def retrying(method: str, params: Any) -> Any:
            for attempt in range(1, RUNNER_RPC_ATTEMPTS + 1):
                response = make_request(method, params)
                error = response.get("error")
                if not isinstance(error, dict) or error.get("code") != INTERNAL_ERROR or attempt == RUNNER_RPC_ATTEMPTS:
                    return response
                logger.info("%s failed (attempt %d of %d), retrying: %s", method, attempt, RUNNER_RPC_ATTEMPTS, error.get("message"))
                time.sleep(0.05 * attempt)
            raise AssertionError("unreachable: the last attempt returns")

        return retrying


def node_control(w3: Web3, method: str, params: list[Any] | None = None) -> Any:
    """Call one of the node's control methods and return its result.

    The call is sent again when the connection fails, because a window that ends after
    exactly the server's keep-alive time (uvicorn's is 5 s) reuses a connection the server
    is closing. Switching faults off must not be lost that way.
    """
    for attempt in range(1, CONTROL_ATTEMPTS + 1):
        try:
            response = w3.provider.make_request(method, params or [])  # type: ignore[arg-type]
            break
        except requests.exceptions.ConnectionError as err:
            if attempt == CONTROL_ATTEMPTS:
                raise OutageError(f"{method} failed {attempt} times: {err}; the node may keep the fault") from err
            logger.warning("%s failed (attempt %d of %d), sending it again: %s", method, attempt, CONTROL_ATTEMPTS, err)
    if "error" in response:
        raise OutageError(f"the node rejected {method}: {response['error']}; it needs a wagerlab chain node")
    return response["result"]


def rpc_faults(w3: Web3, seconds: int, fail_percent: int, delay_percent: int, delay_ms: int) -> FaultResult:
    """Make the node fail and delay a share of its responses for `seconds`; exercised when it failed or delayed one."""
    settings = {"fail_share": fail_percent / 100, "delay_share": delay_percent / 100, "delay_ms": delay_ms}
    counts, waited = _node_fault_window(w3, settings, seconds)
    answered = counts["none"] + counts["delay"] + counts["fail"]
    detail = (
        f"for {seconds} s the node failed {counts['fail']} and delayed {counts['delay']} by {delay_ms} ms "
        f"of {answered} responses (drawn shares {fail_percent} % and {delay_percent} %){waited}"
    )
    evidence = {"failed_responses": counts["fail"], "delayed_responses": counts["delay"], "responses": answered}
    return FaultResult(detail, counts["fail"] + counts["delay"] > 0, evidence)


def duplicate_delivery(w3: Web3, seconds: int, percent: int) -> FaultResult:
    """Make the node send `percent` % of its subscription notifications twice for `seconds`; exercised when it sent one twice."""
    counts, waited = _node_fault_window(w3, {"duplicate_share": percent / 100}, seconds)
    detail = f"for {seconds} s the node sent {counts['duplicate']} subscription notifications twice (drawn share {percent} %){waited}"
    return FaultResult(detail, counts["duplicate"] > 0, {"duplicates_sent": counts["duplicate"]})


def _node_fault_window(w3: Web3, settings: dict[str, float], seconds: int) -> tuple[dict[str, int], str]:
    """Apply node fault settings for `seconds`, then switch them off.

    Return the node's counts, and a note on how long the window waited for an earlier one
    (empty when it started at once).
    """
    requested = time.monotonic()
    with _node_faults:
        delay = time.monotonic() - requested
        waited = f", starting {delay:.1f} s late after an earlier node fault window" if delay >= 0.1 else ""
        node_control(w3, "wagerlab_setFaults", [settings])
        try:
            time.sleep(seconds)
        finally:
            counts = node_control(w3, "wagerlab_setFaults", [{}])
    return counts, waited


def db_lock(engine: Engine, seconds: int) -> FaultResult:
    """Hold a write lock on the run's database for `seconds` from a connection of its own.

    The lock is exercised when logs get applied within RELEASE_WATCH_SECONDS of its release,
    because those writes waited on it. NOTE: a log that first arrived right after the
    release counts too, so this can overstate by a little, and a held-up write to a table
    other than `chain_events` (a bet, a quote) is not seen.
    """
    counts: list[int] = []

    def hold() -> None:
        counts.append(applied_event_count(engine))
        time.sleep(seconds)
        counts.append(applied_event_count(engine))

    if engine.dialect.name == "sqlite":
        how = _hold_sqlite_lock(str(engine.url.database), hold)
    else:
        how = _hold_postgresql_lock(engine, hold)
    if counts[0] != counts[1]:
        raise OutageError(f"the applied logs went from {counts[0]} to {counts[1]} while {how} was held; a writer got past the lock")
    after_release = _applied_after_release(engine, counts[1])
    detail = (
        f"held {how} for {seconds} s; the database contained {counts[0]} applied logs when it was taken "
        f"and {counts[1]} when it was released, and {after_release} more were applied within "
        f"{RELEASE_WATCH_SECONDS:g} s of the release"
    )
    return FaultResult(detail, after_release > 0, {"applied_at_release": counts[1], "applied_after_release": after_release})


def _applied_after_release(engine: Engine, at_release: int) -> int:
    """Return how many logs were applied after the release, watching until one is or RELEASE_WATCH_SECONDS pass."""
    deadline = time.monotonic() + RELEASE_WATCH_SECONDS
    while True:
        applied = applied_event_count(engine) - at_release
        if applied > 0 or time.monotonic() > deadline:
            return applied
        time.sleep(0.05)


def _hold_sqlite_lock(path: str, hold: Callable[[], None]) -> str:
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        logger.warning("db_lock: holding BEGIN IMMEDIATE on %s", path)
        try:
            hold()
        finally:
            connection.execute("ROLLBACK")
    finally:
        connection.close()
    return "the SQLite write lock (BEGIN IMMEDIATE)"


def _hold_postgresql_lock(engine: Engine, hold: Callable[[], None]) -> str:
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            connection.execute(text(f"LOCK TABLE {', '.join(LOCKED_TABLES)} IN EXCLUSIVE MODE"))
            logger.warning("db_lock: holding EXCLUSIVE locks on %s", ", ".join(LOCKED_TABLES))
            hold()
        finally:
            transaction.rollback()
    return f"EXCLUSIVE locks on {len(LOCKED_TABLES)} tables ({', '.join(LOCKED_TABLES)})"


def redis_outage(config: PlatformConfig, seconds: int) -> FaultResult:
    """Make the api's cache unreachable for `seconds` through its admin endpoint, then read what it counted.

    The outage is exercised when at least one odds read or token check fell back to the database.
    """
    url = f"http://{config.host}:{config.api_port}/api/admin/cache-outage"
    headers = {"Authorization": f"Bearer {config.admin_token}"}
    with httpx.Client(timeout=CONTROL_TIMEOUT_SECONDS) as client:
        overlapping = client.get(url, headers=headers).json().get("active", False)
        response = client.post(url, json={"seconds": seconds}, headers=headers)
        if response.status_code != 200:
            raise OutageError(f"the api rejected the cache outage: {response.status_code} {response.text[:300]}")
        before = response.json()
        time.sleep(seconds)
        after = _outage_report(client, url, headers)
    done = {name: after[name] - before[name] for name in ("odds_fallbacks", "token_fallbacks", "replayed_invalidations", "replayed_tokens")}
    extended = ", extending an outage already in progress, so the counts overlap with it" if overlapping else ""
    detail = (
        f"the api's cache ({after['backend']}) was unreachable for {seconds} s{extended}: {done['odds_fallbacks']} odds reads "
        f"and {done['token_fallbacks']} token checks or stores fell back, then {done['replayed_invalidations']} odds "
        f"changes and {done['replayed_tokens']} tokens were written to it"
    )
    return FaultResult(detail, done["odds_fallbacks"] + done["token_fallbacks"] > 0, done)


def _outage_report(client: httpx.Client, url: str, headers: dict[str, str]) -> dict[str, Any]:
    """Wait until the api has reconnected and replayed what it missed, then return its counts."""
    deadline = time.monotonic() + CONTROL_TIMEOUT_SECONDS
    while True:
        report = client.get(url, headers=headers).json()
        if not report["active"] and not report["pending"]:
            return report
        if time.monotonic() > deadline:
            raise OutageError(f"the api's cache did not recover within {CONTROL_TIMEOUT_SECONDS} s after the outage: {report}")
        time.sleep(0.1)


def reorg(w3: Web3, depth: int) -> tuple[int, int, int]:
    """Replace the latest `depth` blocks with new ones that contain the same transactions.

    An empty transfer from a spare dev account is added to the first new block, so every new
    block gets a new hash. That account's transfers from earlier reorgs move to the first
    block too, ahead of the new one, so its nonces stay in order. Return the first replaced
    block, the number of blocks and the number of transactions that were mined again.
    """
    filler = dev_account(REORG_FILLER_ACCOUNT)
    for attempt in range(1, REORG_ATTEMPTS + 1):
        head = w3.eth.block_number
        depth = min(depth, head)
        first = head - depth + 1
        blocks = [w3.eth.get_block(number, full_transactions=True) for number in range(first, head + 1)]
        platform_pairs: list[list[Any]] = []
        filler_pairs: list[list[Any]] = []
        for offset, block in enumerate(blocks):
            for tx in block["transactions"]:
                if tx["from"] == filler.address:
                    filler_pairs.append(["0x" + raw_transaction(tx).hex(), 0])
                else:
                    platform_pairs.append(["0x" + raw_transaction(tx).hex(), offset])
        pairs = platform_pairs + filler_pairs + [["0x" + _signed_filler(w3, filler).hex(), 0]]
        response = w3.provider.make_request("anvil_reorg", [depth, pairs])  # type: ignore[arg-type]
        if "error" not in response:
            _check_replaced(w3, first, blocks[0]["hash"])
            return first, depth, len(platform_pairs)
        # A block mined between the reads and the reorg shifts the replaced range. The node
        # then sends the oldest block's transactions again while they are still canonical,
        # rejects them and keeps its chain, so the latest blocks are read again.
        logger.warning("reorg attempt %d of %d at head %d failed: %s", attempt, REORG_ATTEMPTS, head, response["error"])
    raise OutageError(
        f"anvil_reorg of depth {depth} failed {REORG_ATTEMPTS} times (last error: {response['error']}); "
        "blocks may have kept coming between reading the latest blocks and the reorg"
    )


def _signed_filler(w3: Web3, filler: Any) -> bytes:
    """Sign an empty transfer to itself, with the nonce after every transfer it has mined."""
    tx = {
        "type": 2,
        "chainId": w3.eth.chain_id,
        "nonce": w3.eth.get_transaction_count(filler.address, "latest"),
        "to": filler.address,
        "value": 0,
        "gas": FILLER_GAS,
        "maxFeePerGas": w3.eth.gas_price * 2,
        "maxPriorityFeePerGas": 0,
    }
    return bytes(filler.sign_transaction(tx).raw_transaction)


def _check_replaced(w3: Web3, first: int, old_hash: bytes) -> None:
    """Raise when block `first` survived the reorg, which means the node replaced a later range.

    NOTE: this happens only when a block was mined between the reads and the reorg while the
    oldest block read contains no transaction. A transaction in the shifted range is then dropped.
    """
    if w3.eth.get_block(first)["hash"] == old_hash:
        raise OutageError(f"a block was mined during the reorg, so it replaced the blocks after {first} instead of {first} onward")


def raw_transaction(tx: Any) -> bytes:
    """Encode a signed transaction from its JSON-RPC fields, as `eth_sendRawTransaction` took it."""
    fields = {
        "nonce": tx["nonce"],
        "gas": tx["gas"],
        "to": tx.get("to"),
        "value": tx["value"],
        "data": bytes(tx["input"]),
    }
    if tx.get("type", 0) == 0:
        fields["gasPrice"] = tx["gasPrice"]
        unsigned = serializable_unsigned_transaction_from_dict({k: v for k, v in fields.items() if v is not None})
        return bytes(encode_transaction(unsigned, (tx["v"], int.from_bytes(tx["r"], "big"), int.from_bytes(tx["s"], "big"))))
    fields.update(
        type=tx["type"],
        chainId=tx["chainId"],
        accessList=tx.get("accessList", []),
        v=tx["v"] if "yParity" not in tx else tx["yParity"],
        r=int.from_bytes(tx["r"], "big"),
        s=int.from_bytes(tx["s"], "big"),
    )
    if tx["type"] == 1:
        fields["gasPrice"] = tx["gasPrice"]
    else:
        fields["maxFeePerGas"] = tx["maxFeePerGas"]
        fields["maxPriorityFeePerGas"] = tx["maxPriorityFeePerGas"]
    return bytes(TypedTransaction.from_dict({k: v for k, v in fields.items() if v is not None}).encode())


def applied_event_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(ChainEvent)).one()
