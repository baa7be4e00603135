"""Monitors through `anvil_reorg` on the real node: removed logs reverse deposits, and a reorg
the monitors missed while stopped is detected by block hash and rolled back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from monitor_fixtures import ALICE, LogFactory, account, event_rows, ledger_sums, make_config, make_database
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from test_monitors_node import GAS, Chain, MonitorsThread, chain, platform_config, wait_for  # noqa: F401  (chain is a fixture)
from test_reconcile import common_block

from wagerlab.chain.contracts import contract
from wagerlab.platform.db import Alert
from wagerlab.platform.monitors import DepositsMonitor
from wagerlab.platform.monitors.base import ApplyOutcome
from wagerlab.platform.monitors.events import ChainLog


def signed_deposit(chain: Chain, bettor: LocalAccount, amount: int) -> str:
    book = contract(chain.w3, "Sportsbook", chain.deployment.sportsbook)
    tx = book.functions.deposit(amount).build_transaction(
        {
            "from": bettor.address,
            "gas": GAS,
            "maxFeePerGas": 10 * 10**9,
            "maxPriorityFeePerGas": 10**9,
            "nonce": chain.w3.eth.get_transaction_count(bettor.address),
            "chainId": chain.w3.eth.chain_id,
        }
    )
    return "0x" + bettor.sign_transaction(tx).raw_transaction.hex()


def send_raw(chain: Chain, raw: str) -> None:
    receipt = chain.w3.eth.wait_for_transaction_receipt(chain.w3.eth.send_raw_transaction(raw))
    assert receipt["status"] == 1


def reorg(chain: Chain, depth: int, pairs: list[list[Any]]) -> None:
    response = chain.w3.provider.make_request("anvil_reorg", [depth, pairs])  # type: ignore[arg-type]
    assert "error" not in response, response


def deposit_rows(engine: Engine) -> int:
    return sum(1 for row in event_rows(engine) if row.event == "Deposited")


def alert_rules(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return [row.rule for row in session.exec(select(Alert)).all()]


def test_removed_log_reverses_deposit(chain: Chain, tmp_path: Path) -> None:
    config, engine = platform_config(chain, tmp_path, reconcile_interval_seconds=0)
    alice = chain.bettors[0]
    monitors = MonitorsThread(config, engine).start()
    send_raw(chain, signed_deposit(chain, alice, 1_000_000))
    wait_for(lambda: account(engine, alice.address) == (1_000_000, 0), "the deposit")

    reorg(chain, 1, [])
    wait_for(lambda: account(engine, alice.address) == (0, 0), "the deposit to be reversed")
    wait_for(lambda: common_block(engine) == chain.w3.eth.block_number, "the monitors to reach the head")
    health = monitors.health()["monitors"]["deposits"]
    monitors.stop()

    assert chain.book_balance(alice) == 0
    assert deposit_rows(engine) == 0
    assert health["events_reversed"] >= 1
    assert all(total == 0 for total in ledger_sums(engine).values())


def test_moved_deposit_applied_once(chain: Chain, tmp_path: Path) -> None:
    config, engine = platform_config(chain, tmp_path, reconcile_interval_seconds=0)
    alice = chain.bettors[0]
    monitors = MonitorsThread(config, engine).start()
    raw = signed_deposit(chain, alice, 1_000_000)
    send_raw(chain, raw)
    chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    wait_for(lambda: common_block(engine) == chain.w3.eth.block_number, "the monitors to reach the head")

    reorg(chain, 2, [[raw, 1]])
    moved_to = chain.w3.eth.block_number
    wait_for(lambda: [row.block_number for row in event_rows(engine) if row.event == "Deposited"] == [moved_to], "the deposit in its new block")
    monitors.stop()

    (row,) = [row for row in event_rows(engine) if row.event == "Deposited"]
    assert row.block_hash == "0x" + bytes(chain.w3.eth.get_block(moved_to)["hash"]).hex()
    assert account(engine, alice.address) == (1_000_000, 0)


def test_missed_reorg_rolled_back(chain: Chain, tmp_path: Path) -> None:
    config, engine = platform_config(chain, tmp_path, reconcile_interval_seconds=0)
    alice, bob = chain.bettors
    monitors = MonitorsThread(config, engine).start()
    send_raw(chain, signed_deposit(chain, alice, 1_000_000))
    bob_raw = signed_deposit(chain, bob, 2_000_000)
    send_raw(chain, bob_raw)
    wait_for(lambda: common_block(engine) == chain.w3.eth.block_number, "the monitors to reach the head")
    monitors.stop()

    reorg(chain, 2, [[bob_raw, 0]])  # drops Alice's deposit and moves Bob's one block down
    monitors = MonitorsThread(config, engine).start()
    wait_for(lambda: "deep_reorg" in alert_rules(engine), "the reorg to be detected")
    wait_for(lambda: common_block(engine) == chain.w3.eth.block_number and deposit_rows(engine) == 1, "the monitors to re-apply")
    monitors.stop()

    (row,) = [row for row in event_rows(engine) if row.event == "Deposited"]
    assert row.args["account"] == bob.address
    assert row.block_hash == "0x" + bytes(chain.w3.eth.get_block(row.block_number)["hash"]).hex()
    assert account(engine, alice.address) == (0, 0)
    assert account(engine, bob.address) == (2_000_000, 0)
    assert chain.book_balance(alice) == 0
    assert all(total == 0 for total in ledger_sums(engine).values())


def test_reorg_within_confirmations_silent(chain: Chain, tmp_path: Path) -> None:
    config, engine = platform_config(chain, tmp_path, reconcile_interval_seconds=0, confirmations=3)
    alice = chain.bettors[0]
    monitors = MonitorsThread(config, engine).start()
    send_raw(chain, signed_deposit(chain, alice, 1_000_000))
    wait_for(lambda: monitors.health()["monitors"]["deposits"]["head_block"] == chain.w3.eth.block_number, "the monitors to see the deposit block")

    reorg(chain, 1, [])
    for _ in range(4):
        chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    wait_for(lambda: common_block(engine) == chain.w3.eth.block_number - 3, "the monitors to finish the confirmed blocks")
    monitors.stop()

    assert deposit_rows(engine) == 0
    assert account(engine, alice.address) == (0, 0)
    assert alert_rules(engine) == []


def test_removed_copy_of_reapplied_log_ignored(tmp_path: Path) -> None:
    url, engine = make_database(tmp_path)
    monitor = DepositsMonitor(make_config(url), engine)
    logs = LogFactory()
    applied = logs.log("Deposited", 5, tx_hash="0x" + "ab" * 32, account=ALICE, amount=1_000)
    applied["blockHash"] = "0x" + "11" * 32  # the log's block on the new branch
    removed = {**applied, "blockHash": "0x" + "22" * 32, "removed": True}  # the same log on the old branch

    first = monitor.apply_log(ChainLog.from_rpc(applied))
    second = monitor.apply_log(ChainLog.from_rpc(removed))

    assert (first, second) == (ApplyOutcome.APPLIED, ApplyOutcome.IGNORED)
    assert account(engine, ALICE) == (1_000, 0)
