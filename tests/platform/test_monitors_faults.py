"""Monitors against the real node and database through faults: SIGKILL between applying a log
and storing its cursor, a restart after 100 blocks, out-of-order and duplicate deliveries,
and an oracle result submitted twice."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from monitor_fixtures import account, cursor_of, event_rows, ledger_sums
from sqlalchemy.engine import Engine
from test_monitors_node import GAS, Chain, MonitorsThread, chain, platform_config, send, wait_for  # noqa: F401  (chain is a fixture)
from test_reconcile import MARKET, common_block, settle_market
from web3 import AsyncHTTPProvider, AsyncWeb3

from wagerlab.chain.accounts import dev_roles
from wagerlab.chain.contracts import contract, transact
from wagerlab.platform.monitors import DepositsMonitor, SettlementMonitor
from wagerlab.platform.monitors.base import ApplyOutcome
from wagerlab.platform.monitors.events import ChainLog
from wagerlab.platform.monitors.follow import LogFollower

KILL_AFTER_LEGS = """
import os, signal, sys
from pathlib import Path
from typing import Any

from wagerlab.platform.config import PlatformConfig
from wagerlab.platform.monitors import base, run_monitors

config_path, kill_at, marker = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
write_legs = base.write_legs
calls = 0


def write_legs_then_die(session, event_id, legs):
    # Runs inside the apply transaction: the event row and its effects are written, the cursor is not.
    global calls
    write_legs(session, event_id, legs)
    session.flush()
    calls += 1
    if calls == kill_at:
        marker.write_text(str(event_id))
        os.kill(os.getpid(), signal.SIGKILL)


base.write_legs = write_legs_then_die
run_monitors(PlatformConfig.load(config_path))
"""


def deposit_rows(engine: Engine) -> int:
    return sum(1 for row in event_rows(engine) if row.event == "Deposited")


def test_sigkill_between_apply_and_cursor(chain: Chain, tmp_path: Path) -> None:
    config, engine = platform_config(chain, tmp_path, reconcile_interval_seconds=0)
    config_path, marker = tmp_path / "platform.json", tmp_path / "killed"
    config.dump(config_path)
    alice, bob = chain.bettors
    chain.deposit(alice, 1_000_000)
    chain.deposit(bob, 2_000_000)
    chain.deposit(alice, 4_000_000)

    process = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_LEGS, str(config_path), "2", str(marker)], capture_output=True, text=True, timeout=60
    )

    assert process.returncode == -signal.SIGKILL, process.stdout + process.stderr
    assert marker.exists()
    assert deposit_rows(engine) == 1
    assert account(engine, alice.address) == (1_000_000, 0)
    first = event_rows(engine)[0]
    assert cursor_of(engine, "deposits") == (first.block_number, first.log_index)

    monitors = MonitorsThread(config, engine).start()
    wait_for(lambda: deposit_rows(engine) >= 3, "every deposit after the restart")
    wait_for(lambda: common_block(engine) == chain.w3.eth.block_number, "the monitors to reach the head")
    health = monitors.health()["monitors"]["deposits"]
    monitors.stop()

    assert deposit_rows(engine) == 3
    assert account(engine, alice.address) == (5_000_000, 0)
    assert account(engine, bob.address) == (2_000_000, 0)
    assert health["events_applied"] == 2
    assert health["duplicates"] == 0
    assert all(total == 0 for total in ledger_sums(engine).values())


def test_restart_after_100_blocks_resumes(chain: Chain, tmp_path: Path) -> None:
    config, engine = platform_config(chain, tmp_path, reconcile_interval_seconds=0)
    operator = dev_roles().operator
    book = contract(chain.w3, "Sportsbook", chain.deployment.sportsbook)
    closes_at = int(chain.w3.eth.get_block("latest")["timestamp"]) + 3600
    market_ids = range(100, 200)
    for market_id in market_ids:
        send(chain.w3, operator, book.functions.createMarket(market_id, 2, closes_at, 10**9))
    monitors = MonitorsThread(config, engine).start()
    wait_for(lambda: common_block(engine) == chain.w3.eth.block_number, "the monitors to reach the head")
    monitors.stop()
    stopped_at = common_block(engine)

    for market_id in market_ids:
        send(chain.w3, operator, book.functions.closeMarket(market_id))
    assert chain.w3.eth.block_number == stopped_at + 100
    monitors = MonitorsThread(config, engine).start()
    wait_for(lambda: common_block(engine) == chain.w3.eth.block_number, "the monitors to catch up 100 blocks")
    health = monitors.health()["monitors"]["settlement"]
    monitors.stop()

    closed = [row for row in event_rows(engine) if row.event == "MarketClosed"]
    assert len(closed) == 100
    assert sorted(row.args["marketId"] for row in closed) == list(market_ids)
    assert min(row.block_number for row in closed) == stopped_at + 1
    assert health["events_applied"] == 100
    assert health["skipped"] == 0
    assert health["duplicates"] == 0


def test_out_of_order_notification_loses_nothing(chain: Chain, tmp_path: Path) -> None:
    config, engine = platform_config(chain, tmp_path, reconcile_interval_seconds=0)
    alice, bob = chain.bettors
    chain.deposit(alice, 1_000_000)
    chain.deposit(bob, 2_000_000)
    raw_logs = chain.w3.eth.get_logs({"address": chain.deployment.sportsbook, "fromBlock": 0, "toBlock": "latest"})
    deposits = [dict(log) for log in raw_logs if log["topics"][0] == raw_logs[-1]["topics"][0]]
    monitor = DepositsMonitor(config, engine)
    monitor.read_position()
    follower = LogFollower(monitor)

    async def deliver_newest_first() -> None:
        http = AsyncWeb3(AsyncHTTPProvider(config.rpc_url))
        stop = asyncio.Event()
        for raw in reversed(deposits):
            await follower._handle_notification(http, raw, stop)
        await http.provider.disconnect()

    asyncio.run(deliver_newest_first())

    assert deposit_rows(engine) == 2
    assert account(engine, alice.address) == (1_000_000, 0)
    assert account(engine, bob.address) == (2_000_000, 0)


def test_duplicate_delivery_of_real_log(chain: Chain, tmp_path: Path) -> None:
    config, engine = platform_config(chain, tmp_path, reconcile_interval_seconds=0)
    alice = chain.bettors[0]
    chain.deposit(alice, 1_000_000)
    (raw,) = chain.w3.eth.get_logs({"address": chain.deployment.sportsbook, "fromBlock": 0, "toBlock": "latest", "topics": [DepositsMonitor(config, engine).codec.topics]})
    monitor = DepositsMonitor(config, engine)
    log = ChainLog.from_rpc(raw)

    outcomes = [monitor.apply_log(log) for _ in range(3)]

    assert outcomes == [ApplyOutcome.APPLIED, ApplyOutcome.SKIPPED, ApplyOutcome.SKIPPED]
    assert account(engine, alice.address) == (1_000_000, 0)


def test_same_oracle_result_submitted_twice(chain: Chain, tmp_path: Path) -> None:
    config, engine = platform_config(chain, tmp_path, reconcile_interval_seconds=0)
    settle_market(chain, engine)
    roles = dev_roles()
    oracle = contract(chain.w3, "ResultOracle", chain.deployment.oracle)
    repeats = [transact(chain.w3, reporter, oracle.functions.submitResult(MARKET, 0), gas=GAS) for reporter in roles.reporters]
    assert [receipt["status"] for receipt in repeats] == [0, 0, 0]

    monitors = MonitorsThread(config, engine).start()
    wait_for(lambda: common_block(engine) == chain.w3.eth.block_number, "the monitors to reach the head")
    monitors.stop()
    settled = [row for row in event_rows(engine) if row.event == "MarketSettled"]
    monitor = SettlementMonitor(config, engine)
    logs = [ChainLog.from_rpc(raw) for raw in chain.w3.eth.get_logs({"address": chain.deployment.sportsbook, "fromBlock": 0, "toBlock": "latest"})]
    (settled_log,) = [log for log in logs if log.topics[0] in monitor.codec._by_topic and monitor.codec.decode(log).name == "MarketSettled"]
    again = monitor.apply_log(settled_log)

    assert len(settled) == 1
    assert again is ApplyOutcome.SKIPPED
    alice, bob = chain.bettors
    assert account(engine, alice.address) == (chain.book_balance(alice), 0)
    assert account(engine, bob.address) == (chain.book_balance(bob), 0)


def node_control(chain: Chain, method: str) -> Any:
    response = chain.w3.provider.make_request(method, [])  # type: ignore[arg-type]
    assert "error" not in response, response
    return response["result"]


def deposit_through_fault(chain: Chain, tmp_path: Path, method: str) -> tuple[Any, dict[str, Any], Engine]:
    """Deposit, inject the node fault `method`, deposit three times more at once, and wait for all four."""
    config, engine = platform_config(chain, tmp_path, reconcile_interval_seconds=0)
    alice, bob = chain.bettors
    monitors = MonitorsThread(config, engine).start()
    chain.deposit(alice, 1_000_000)
    wait_for(lambda: deposit_rows(engine) == 1, "the first deposit")

    result = node_control(chain, method)
    chain.deposit(bob, 2_000_000)
    chain.deposit(alice, 3_000_000)
    chain.deposit(bob, 4_000_000)
    wait_for(lambda: deposit_rows(engine) >= 4, "the deposits made while the monitors reconnected")
    wait_for(lambda: common_block(engine) == chain.w3.eth.block_number, "the monitors to reach the head")
    health = monitors.health()["monitors"]["deposits"]
    monitors.stop()
    return result, health, engine


def test_ws_drop_backfills_without_gap(chain: Chain, tmp_path: Path) -> None:
    dropped, health, engine = deposit_through_fault(chain, tmp_path, "wagerlab_dropConnections")
    alice, bob = chain.bettors

    assert dropped == 3
    assert deposit_rows(engine) == 4
    assert account(engine, alice.address) == (4_000_000, 0)
    assert account(engine, bob.address) == (6_000_000, 0)
    assert health["restarts"] >= 1
    assert "SubscriptionClosedError" in health["last_error"]
    assert health["events_applied"] == 4


def test_node_restart_resubscribes(chain: Chain, tmp_path: Path) -> None:
    result, health, engine = deposit_through_fault(chain, tmp_path, "wagerlab_restart")
    alice, bob = chain.bettors

    assert result["connections"] == 3
    assert deposit_rows(engine) == 4
    assert account(engine, alice.address) == (4_000_000, 0)
    assert account(engine, bob.address) == (6_000_000, 0)
    assert health["restarts"] >= 1
    assert health["state"] == "live"
    assert health["events_applied"] == 4
