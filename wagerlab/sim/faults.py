"""Faults a scenario injects after a phase or halfway through one, each recorded in the report.

The faults that last for seconds, and the reorg of the platform's own blocks, live in
`wagerlab.sim.outages`. This module maps every `[[faults]]` kind to its injector.

`double_credit` edits the database behind the platform's back: it credits the first
applied deposit a second time, with balanced ledger legs, as a monitor that applied one
log twice would. The conservation invariant must catch it. `bet_stake_edit` halves the
stake of the first bet row, so the settlement monitor later releases the wrong amount.
Reconciliation repairs both.

Every injector returns a `FaultResult`, so the report says whether the fault was exercised:
whether it touched any work, with the counts that decide it. A fault that struck while
nothing ran passes without testing anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3

from wagerlab.chain.accounts import dev_account
from wagerlab.chain.contracts import contract, transact

from wagerlab.platform.config import PlatformConfig
from wagerlab.platform.db import Account, Bet, ChainEvent, LedgerEntry, write_session
from wagerlab.sim import outages
from wagerlab.sim.outages import FaultResult
from wagerlab.sim.faults_gateway import gateway_restart
from wagerlab.sim.invariants import monitored_log_count
from wagerlab.sim.stack import Stack

logger = logging.getLogger(__name__)

REORG_DEPOSITOR = 9
"""Dev account that `reorg_deposit` deposits from; no role and no scenario actor uses it."""
REORG_DEPOSIT = 100_000_000
REORG_GAS = 200_000
REORG_WAIT_SECONDS = 30.0
CRASH_WAIT_SECONDS = 2.0
"""How long `monitor_crash` waits for unapplied logs before it kills the monitors anyway."""


class FaultError(Exception):
    """A fault could not be injected (for example, there was nothing to corrupt yet)."""


@dataclass(frozen=True)
class FaultOption:
    """One integer parameter of a fault kind: its default in scenario files and the fuzzer's range."""

    default: int
    minimum: int
    maximum: int


FAULT_OPTIONS: dict[str, dict[str, FaultOption]] = {
    "reorg": {"depth": FaultOption(2, 1, 3)},
    "redis_outage": {"seconds": FaultOption(3, 1, 6)},
    "db_lock": {"seconds": FaultOption(3, 1, 6)},
    "rpc_faults": {
        "seconds": FaultOption(4, 1, 6),
        "fail_percent": FaultOption(10, 0, 30),
        "delay_percent": FaultOption(20, 0, 50),
        "delay_ms": FaultOption(200, 0, 1_000),
    },
    "duplicate_delivery": {"seconds": FaultOption(4, 1, 6), "percent": FaultOption(100, 10, 100)},
}
"""Parameters by fault kind; a scenario file may set them, the fuzzer draws each from its range."""

WINDOW_FAULTS = frozenset({"redis_outage", "db_lock", "rpc_faults", "duplicate_delivery"})
"""Kinds that hold for seconds: the runner injects them in the background while the run goes on."""


@dataclass(frozen=True)
class FaultContext:
    """The parts of a run an injector may reach: the database, the chain, the platform's config and processes."""

    engine: Engine
    w3: Web3
    config: PlatformConfig
    stack: Stack
    options: Mapping[str, int] = field(default_factory=dict)
    """The fault's parameters; missing ones take their `FAULT_OPTIONS` default."""

    def parameters(self, kind: str) -> dict[str, int]:
        """Return every parameter of `kind`, from `options` or the default."""
        return {name: self.options.get(name, option.default) for name, option in FAULT_OPTIONS[kind].items()}


def inject(kind: str, phase: str, context: FaultContext) -> dict[str, Any]:
    """Inject one fault and return its report entry `{kind, at, time, detail, exercised, evidence}`."""
    injector = INJECTORS.get(kind)
    if injector is None:
        raise FaultError(f"unknown fault kind {kind!r}; expected one of {sorted(INJECTORS)}")
    try:
        result = injector(context)
    except outages.OutageError as err:
        raise FaultError(f"fault {kind} after phase {phase} failed: {err}") from err
    exercised = "exercised" if result.exercised else "not exercised"
    logger.warning("injected fault %s at %s (%s): %s", kind, phase, exercised, result.detail)
    return {
        "kind": kind,
        "at": phase,
        "time": time.time(),
        "detail": result.detail,
        "exercised": result.exercised,
        "evidence": result.evidence,
    }


def _double_credit(context: FaultContext) -> FaultResult:
    with write_session(context.engine) as session:
        deposit = session.exec(
            select(ChainEvent).where(ChainEvent.event == "Deposited").order_by(ChainEvent.id).limit(1)
        ).first()
        if deposit is None:
            raise FaultError("double_credit needs an applied deposit; inject it after the onboarding phase")
        address, amount = deposit.args["account"], int(deposit.args["amount"])
        session.execute(update(Account).where(Account.address == address).values(available=Account.available + amount))
        session.add(LedgerEntry(event_id=deposit.id, account=f"wallet:{address}", amount=-amount))
        session.add(LedgerEntry(event_id=deposit.id, account=f"available:{address}", amount=amount))
    detail = f"credited deposit {deposit.tx_hash}:{deposit.log_index} of {amount} to {address} a second time"
    return FaultResult(detail, True, {"credited": amount})


def _bet_stake_edit(context: FaultContext) -> FaultResult:
    with write_session(context.engine) as session:
        bet = session.exec(select(Bet).order_by(Bet.bet_id).limit(1)).first()
        if bet is None:
            raise FaultError("bet_stake_edit needs an applied bet; inject it after the betting phase")
        before = bet.stake
        bet.stake = max(1, before // 2)
        session.add(bet)
    detail = f"changed the stake of bet {bet.bet_id} from {before} to {bet.stake} in the database only"
    return FaultResult(detail, bet.stake != before, {"stake_before": before, "stake_after": bet.stake})


def _monitor_crash(context: FaultContext) -> FaultResult:
    """Kill the monitors process with SIGKILL, preferably while logs wait to be applied, and restart it.

    Exercised when some logs were still unapplied at the kill.
    """
    deadline = time.monotonic() + CRASH_WAIT_SECONDS
    applied, expected = _applied_and_expected(context)
    while applied >= expected and time.monotonic() < deadline:
        time.sleep(0.01)
        applied, expected = _applied_and_expected(context)
    old_pid = context.stack.kill_and_restart("monitors", context.config.monitors_port)
    detail = f"killed the monitors process (pid {old_pid}) with SIGKILL when {applied} of {expected} monitored logs were applied, and restarted it"
    pending = max(0, expected - applied)
    return FaultResult(detail, pending > 0, {"logs_pending_at_crash": pending, "logs_applied_at_crash": applied})


def _applied_and_expected(context: FaultContext) -> tuple[int, int]:
    expected = monitored_log_count(context.w3, context.config.deployment)
    with Session(context.engine) as session:
        applied = session.exec(select(func.count()).select_from(ChainEvent)).one()
    return applied, expected


def _ws_drop(context: FaultContext) -> FaultResult:
    dropped = _node_control(context, "wagerlab_dropConnections")
    detail = f"the node closed all {dropped} WebSocket connections; the monitors must resubscribe and backfill from their cursors"
    return FaultResult(detail, dropped > 0, {"connections_dropped": dropped})


def _node_restart(context: FaultContext) -> FaultResult:
    result = _node_control(context, "wagerlab_restart")
    detail = (
        f"the node dropped {result['filters']} filters and {result['connections']} WebSocket connections, "
        "as a restarted node would; every subscriber must subscribe again"
    )
    evidence = {"filters_dropped": result["filters"], "connections_dropped": result["connections"]}
    return FaultResult(detail, result["filters"] + result["connections"] > 0, evidence)


def _node_control(context: FaultContext, method: str, params: list[Any] | None = None) -> Any:
    response = context.w3.provider.make_request(method, params or [])  # type: ignore[arg-type]
    if "error" in response:
        raise FaultError(f"the node rejected {method}: {response['error']}; it needs a wagerlab chain node")
    return response["result"]


def _reorg_deposit(context: FaultContext) -> FaultResult:
    """Deposit from a spare dev account, let the monitors apply it, then reorg it one block later."""
    w3, deployment = context.w3, context.config.deployment
    depositor = dev_account(REORG_DEPOSITOR)
    token, book = contract(w3, "WagerToken", deployment.token), contract(w3, "Sportsbook", deployment.sportsbook)
    for call in (token.functions.faucet(REORG_DEPOSIT), token.functions.approve(deployment.sportsbook, REORG_DEPOSIT)):
        if transact(w3, depositor, call, gas=REORG_GAS)["status"] != 1:
            raise FaultError(f"reorg_deposit could not fund dev account {REORG_DEPOSITOR} ({depositor.address})")
    raw = _signed_deposit(w3, depositor, book)
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(raw))
    deposit_block = receipt["blockNumber"]
    for _ in range(context.config.confirmations + 1):
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    applied = _wait_for_deposit_block(context, receipt["transactionHash"], lambda number: number == deposit_block)

    depth, others = _move_deposit(context, raw, deposit_block)
    reapplied = _wait_for_deposit_block(context, receipt["transactionHash"], lambda number: number == deposit_block + 1)
    detail = (
        f"deposited {REORG_DEPOSIT} from {depositor.address} in block {deposit_block} "
        f"({'applied' if applied else 'not applied in time'} by the monitors), then a reorg of {depth} blocks moved it to "
        f"block {deposit_block + 1} ({'re-applied there' if reapplied else 'not re-applied in time'}) "
        f"and mined the other {others} transactions of those blocks again"
    )
    # Only a deposit the monitors had applied makes them undo and redo anything.
    return FaultResult(detail, applied, {"deposit_applied_before_reorg": int(applied), "reorg_depth": depth, "transactions_mined_again": others})


def _move_deposit(context: FaultContext, raw: bytes, deposit_block: int) -> tuple[int, int]:
    """Reorg from `deposit_block` to the head with the deposit one block later.

    Return the depth and the number of other transactions mined again.

    Every other transaction of the replaced blocks, such as a bettor's bet mined meanwhile, is
    mined again at its old offset, so the fault moves the deposit and drops nothing. A block
    mined between the reads and the reorg shifts the replaced range. The node then rejects the
    deposit, because it is still canonical, and the latest blocks are read again.
    """
    w3 = context.w3
    deposit_hash = keccak(raw)
    for attempt in range(1, outages.REORG_ATTEMPTS + 1):
        head = w3.eth.block_number
        pairs: list[list[Any]] = [["0x" + raw.hex(), 1]]
        for offset, number in enumerate(range(deposit_block, head + 1)):
            for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
                if bytes(tx["hash"]) != deposit_hash:
                    pairs.append(["0x" + outages.raw_transaction(tx).hex(), offset])
        depth = head - deposit_block + 1
        response = w3.provider.make_request("anvil_reorg", [depth, pairs])  # type: ignore[arg-type]
        if "error" not in response:
            return depth, len(pairs) - 1
        logger.warning("reorg_deposit attempt %d of %d at head %d failed: %s", attempt, outages.REORG_ATTEMPTS, head, response["error"])
    raise FaultError(f"reorg_deposit: anvil_reorg from block {deposit_block} failed {outages.REORG_ATTEMPTS} times: {response['error']}")


def _signed_deposit(w3: Web3, depositor: LocalAccount, book: Any) -> bytes:
    tx = book.functions.deposit(REORG_DEPOSIT).build_transaction(
        {
            "from": depositor.address,
            "gas": REORG_GAS,
            "maxFeePerGas": w3.eth.gas_price * 2,
            "maxPriorityFeePerGas": 0,
            "nonce": w3.eth.get_transaction_count(depositor.address),
            "chainId": w3.eth.chain_id,
        }
    )
    return bytes(depositor.sign_transaction(tx).raw_transaction)


def _wait_for_deposit_block(context: FaultContext, tx_hash: bytes, expected: Callable[[int], bool]) -> bool:
    deadline = time.monotonic() + REORG_WAIT_SECONDS
    while time.monotonic() < deadline:
        with Session(context.engine) as session:
            row = session.exec(select(ChainEvent).where(ChainEvent.tx_hash == "0x" + bytes(tx_hash).hex())).first()
        if row is not None and expected(row.block_number):
            return True
        time.sleep(0.05)
    return False


def _reorg(context: FaultContext) -> FaultResult:
    """Reorg the latest blocks, which hold the platform's transactions, then wait until the monitors applied them again.

    Exercised when the replaced blocks held transactions, so applied logs moved to new blocks.
    """
    first, depth, mined_again = outages.reorg(context.w3, **context.parameters("reorg"))
    new_hashes = {context.w3.eth.get_block(number)["hash"].to_0x_hex() for number in range(first, first + depth)}
    deadline = time.monotonic() + REORG_WAIT_SECONDS
    while True:
        applied, expected = _applied_and_expected(context)
        with Session(context.engine) as session:
            rows = session.exec(select(ChainEvent.block_hash).where(ChainEvent.block_number.between(first, first + depth - 1))).all()
        stale = sum(1 for block_hash in rows if block_hash not in new_hashes)
        if (applied == expected and stale == 0) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    detail = (
        f"a reorg of depth {depth} replaced blocks {first}..{first + depth - 1} and mined their {mined_again} "
        f"transactions again in new blocks; then {applied} of {expected} monitored logs were applied, "
        f"{stale} of them still at a replaced block hash"
    )
    return FaultResult(detail, mined_again > 0, {"transactions_mined_again": mined_again, "stale_logs": stale})


INJECTORS: dict[str, Callable[[FaultContext], FaultResult]] = {
    "monitor_crash": _monitor_crash,
    "reorg_deposit": _reorg_deposit,
    "ws_drop": _ws_drop,
    "node_restart": _node_restart,
    "reorg": _reorg,
    "redis_outage": lambda context: outages.redis_outage(context.config, **context.parameters("redis_outage")),
    "db_lock": lambda context: outages.db_lock(context.engine, **context.parameters("db_lock")),
    "rpc_faults": lambda context: outages.rpc_faults(context.w3, **context.parameters("rpc_faults")),
    "duplicate_delivery": lambda context: outages.duplicate_delivery(context.w3, **context.parameters("duplicate_delivery")),
    "double_credit": _double_credit,
    "bet_stake_edit": _bet_stake_edit,
    "gateway_restart": gateway_restart,
}
"""Fault kinds by name; each injector returns the report's detail and whether the fault was exercised."""
