"""The contract monitor's rules, each shown firing and not firing, against the real node."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from api_fixtures import Chain, chain, make_config  # noqa: F401
from sqlalchemy.engine import Engine

from wagerlab.chain.accounts import dev_account, dev_roles
from wagerlab.chain.contracts import contract, transact
from wagerlab.odds import ONE_TOKEN
from wagerlab.platform.db import AlertSeverity, User, create_tables, make_engine, write_session
from wagerlab.platform.security import ContractMonitor, MonitorSettings
from wagerlab.platform.security.contract_monitor import drain_finding
from wagerlab.platform.security.rules import Finding, GasBaseline, RevertBurst

STRANGER = dev_account(8)
USER = dev_account(9)


async def _ignore(rule: str, severity: AlertSeverity, detail: str) -> None:
    return None


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    create_tables(engine)
    with write_session(engine) as session:
        session.add(User(username="registered", password_hash="x", address=USER.address))
    return engine


@pytest.fixture
def monitor(chain: Chain, engine: Engine) -> ContractMonitor:  # noqa: F811
    config = make_config("sqlite://", chain.deployment, rpc_url=chain.url)
    monitor = ContractMonitor(config, engine, _ignore, MonitorSettings(revert_burst=3, revert_window_blocks=5))
    monitor.next_block = chain.w3.eth.block_number + 1
    return monitor


def _send(chain: Chain, account, to: str, data: str, gas: int = 200_000) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    tx = {"to": to, "data": data, "value": 0, "gas": gas, "gasPrice": chain.w3.eth.gas_price,
          "nonce": chain.w3.eth.get_transaction_count(account.address), "chainId": chain.w3.eth.chain_id}
    chain.w3.eth.wait_for_transaction_receipt(chain.w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction))


def rules(findings: list[Finding]) -> list[str]:
    return [finding.rule for finding in findings]


def test_monitor_unexpected_selector_fires(chain: Chain, monitor: ContractMonitor) -> None:  # noqa: F811
    _send(chain, dev_roles().operator, chain.deployment.sportsbook, "0xdeadbeef")

    assert rules(monitor.poll()) == ["unexpected_selector"]


def test_monitor_known_selector_quiet(chain: Chain, monitor: ContractMonitor) -> None:  # noqa: F811
    book = contract(chain.w3, "Sportsbook", chain.deployment.sportsbook)
    transact(chain.w3, dev_roles().operator, book.functions.setOracle(chain.deployment.oracle), gas=200_000)

    assert monitor.poll() == []


def test_monitor_unknown_caller_fires_for_stranger(chain: Chain, monitor: ContractMonitor) -> None:  # noqa: F811
    book = contract(chain.w3, "Sportsbook", chain.deployment.sportsbook)
    data = book.encode_abi("withdraw", [ONE_TOKEN])
    _send(chain, STRANGER, chain.deployment.sportsbook, data)
    _send(chain, USER, chain.deployment.sportsbook, data)

    findings = monitor.poll()
    assert rules(findings) == ["unknown_caller"]
    assert STRANGER.address in findings[0].detail
    assert findings[0].severity == AlertSeverity.INFO


def test_monitor_revert_burst_fires_once(chain: Chain, monitor: ContractMonitor) -> None:  # noqa: F811
    book = contract(chain.w3, "Sportsbook", chain.deployment.sportsbook)
    for _ in range(4):
        _send(chain, USER, chain.deployment.sportsbook, book.encode_abi("withdraw", [ONE_TOKEN]))

    assert rules(monitor.poll()) == ["revert_burst"]


def test_monitor_oracle_rules(chain: Chain, monitor: ContractMonitor) -> None:  # noqa: F811
    book = contract(chain.w3, "Sportsbook", chain.deployment.sportsbook)
    oracle = contract(chain.w3, "ResultOracle", chain.deployment.oracle)
    closes_at = chain.w3.eth.get_block("latest")["timestamp"] + 3600
    operator, reporters = dev_roles().operator, dev_roles().reporters
    transact(chain.w3, operator, book.functions.createMarket(900, 2, closes_at, 100 * ONE_TOKEN), gas=300_000)
    transact(chain.w3, reporters[0], oracle.functions.submitResult(900, 1), gas=300_000)
    transact(chain.w3, reporters[1], oracle.functions.submitResult(900, 0), gas=300_000)

    assert sorted(rules(monitor.poll())) == ["oracle_dispute", "premature_result", "premature_result"]


def test_monitor_pause_uses_guardian(chain: Chain, monitor: ContractMonitor) -> None:  # noqa: F811
    book = contract(chain.w3, "Sportsbook", chain.deployment.sportsbook)
    finding = Finding("drain_pattern", AlertSeverity.CRITICAL, "test")

    monitor.pause(finding)
    monitor.pause(finding)
    paused = book.functions.paused().call()
    transact(chain.w3, dev_roles().guardian, book.functions.unpause(), gas=200_000)

    assert paused is True
    assert monitor.paused_by_monitor is True


@pytest.mark.parametrize(
    ("claims", "target", "fires"),
    [
        (Counter({1: 1}), "0xBook", False),
        (Counter({1: 1}), "0xAttacker", False),
        (Counter({1: 2}), "0xBook", True),
        (Counter({1: 1, 2: 1}), "0xAttacker", True),
        (Counter({1: 1, 2: 1}), "0xBook", False),
    ],
)
def test_drain_finding_cases(claims: Counter[int], target: str, fires: bool) -> None:
    finding = drain_finding(claims, target, "0xBook", "0xtx")

    assert (finding is not None) is fires
    if finding is not None:
        assert finding.severity == AlertSeverity.CRITICAL


def test_gas_baseline_fires_after_warmup() -> None:
    baseline = GasBaseline(warmup_calls=3, factor_percent=300)
    key = ("Sportsbook", "abcd1234")

    assert [baseline.check(key, 100_000) for _ in range(3)] == [False, False, False]
    assert baseline.check(key, 290_000) is False
    assert baseline.check(key, 1_000_000) is True


def test_gas_baseline_quiet_during_warmup() -> None:
    baseline = GasBaseline(warmup_calls=3, factor_percent=300)

    assert baseline.check(("Sportsbook", "abcd1234"), 100_000) is False
    assert baseline.check(("Sportsbook", "abcd1234"), 10_000_000) is False


def test_revert_burst_quiet_when_spread() -> None:
    burst = RevertBurst(threshold=3, window_blocks=5)

    assert [burst.add(block) for block in (1, 10, 20, 30)] == [None, None, None, None]
    assert burst.add(31) is None
    assert burst.add(32) == 3
