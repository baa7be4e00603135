"""Measure monitor lag: from a deposit's block being mined to its `chain_events` row.

The chain node and the monitors run as processes, as in `wagerlab run`. A dev account
sends deposits one at a time, `--interval` seconds apart, each mined in its own block.
For each deposit the mined time is when `eth_sendRawTransaction` returned (the node mines
before it answers), and the applied time is the row's `applied_at`, written in the same
transaction that commits the row and the cursor. The baseline in the same run is the
round trip of `eth_sendRawTransaction` itself.

Usage: .venv/bin/python bench/bench_monitor_lag.py [--count 200] [--interval 0.05]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from eth_account.signers.local import LocalAccount
from sqlmodel import Session, select
from web3 import HTTPProvider, Web3

from wagerlab.chain.accounts import dev_account, dev_key, dev_roles
from wagerlab.chain.contracts import contract, transact
from wagerlab.chain.deploy import deploy_platform
from wagerlab.platform.config import PlatformConfig
from wagerlab.platform.db import ChainEvent, make_engine, migrate
from wagerlab.sim.stack import Stack, free_port

GAS = 200_000
DEPOSITOR = 8


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def start(run_dir: Path, stack: Stack) -> tuple[Web3, PlatformConfig]:
    http_url, ws_url = stack.start_node()
    w3 = Web3(HTTPProvider(http_url, request_kwargs={"timeout": 60}))
    deployment = deploy_platform(w3, dev_roles(), house_funding=10**9)
    config = PlatformConfig(
        rpc_url=http_url,
        ws_url=ws_url,
        db_url=f"sqlite:///{run_dir / 'platform.db'}",
        deployment=deployment,
        operator_key=dev_key(1),
        odds_signer_key=dev_key(2),
        guardian_key=dev_key(3),
        admin_token="bench",
        monitors_port=free_port(),
        reconcile_interval_seconds=0,
    )
    config.dump(run_dir / "platform.json")
    migrate(make_engine(config.db_url))
    stack.start_services(run_dir / "platform.json", {"monitors": config.monitors_port})
    return w3, config


def send_deposits(w3: Web3, config: PlatformConfig, depositor: LocalAccount, count: int, interval: float) -> dict[str, tuple[float, float]]:
    """Send `count` deposits; return send start and send return times by transaction hash."""
    token = contract(w3, "WagerToken", config.deployment.token)
    book = contract(w3, "Sportsbook", config.deployment.sportsbook)
    transact(w3, depositor, token.functions.faucet(count), gas=GAS)
    transact(w3, depositor, token.functions.approve(config.deployment.sportsbook, count), gas=GAS)
    nonce = w3.eth.get_transaction_count(depositor.address)
    fee = {"maxFeePerGas": w3.eth.gas_price * 2, "maxPriorityFeePerGas": 0, "chainId": w3.eth.chain_id, "gas": GAS}
    signed = [
        depositor.sign_transaction(book.functions.deposit(1).build_transaction({**fee, "from": depositor.address, "nonce": nonce + index})).raw_transaction
        for index in range(count)
    ]

    times = {}
    for raw in signed:
        started = time.time()
        tx_hash = w3.eth.send_raw_transaction(raw)
        times["0x" + bytes(tx_hash).hex()] = (started, time.time())
        time.sleep(interval)
    return times


def applied_times(config: PlatformConfig, count: int, timeout: float = 120.0) -> dict[str, float]:
    engine = make_engine(config.db_url)
    deadline = time.monotonic() + timeout
    while True:
        with Session(engine) as session:
            rows = session.exec(select(ChainEvent).where(ChainEvent.event == "Deposited")).all()
        if len(rows) >= count or time.monotonic() > deadline:
            return {row.tx_hash.lower(): row.applied_at / 1000 for row in rows}
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="deposits to send (default: 200)")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between deposits (default: 0.05)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-monitor-lag-") as directory:
        stack = Stack(Path(directory))
        try:
            w3, config = start(Path(directory), stack)
            times = send_deposits(w3, config, dev_account(DEPOSITOR), args.count, args.interval)
            applied = applied_times(config, args.count)
        finally:
            stack.stop()

    missing = [tx_hash for tx_hash in times if tx_hash not in applied]
    lags_ms = [(applied[tx_hash] - returned) * 1000 for tx_hash, (_started, returned) in times.items() if tx_hash in applied]
    round_trips_ms = [(returned - started) * 1000 for started, returned in times.values()]
    result = {
        "deposits": args.count,
        "interval_seconds": args.interval,
        "missing": len(missing),
        "lag_ms": {"p50": round(percentile(lags_ms, 0.50), 1), "p99": round(percentile(lags_ms, 0.99), 1), "max": round(max(lags_ms), 1)},
        "send_round_trip_ms": {"p50": round(percentile(round_trips_ms, 0.50), 1), "p99": round(percentile(round_trips_ms, 0.99), 1)},
        "lag_p50_over_send_p50": round(statistics.median(lags_ms) / statistics.median(round_trips_ms), 2),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
