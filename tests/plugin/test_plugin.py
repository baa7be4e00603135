"""The pytest plugin, used the way a QA project uses it: from its own pytest run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from wagerlab.sim.invariants import InvariantResult
from wagerlab.testing.plugin import InvariantsFailed, assert_invariants

REPO = Path(__file__).resolve().parents[2]
SUBPROCESS_TIMEOUT_SECONDS = 600

SCENARIO_TEST = '''\
from pathlib import Path


def test_smoke_scenario(wagerlab_run_scenario, wagerlab_assert_invariants):
    result = wagerlab_run_scenario(Path(__file__).parent / "smoke.toml")

    wagerlab_assert_invariants(result)
    assert result.report["counts"]["bets_placed"] == 18
    assert result.report_path.is_file()
'''

PLATFORM_TEST = '''\
def test_live_platform(wagerlab_platform, wagerlab_api, wagerlab_chain, wagerlab_websocket, wagerlab_advance_time):
    user = {"username": "qa-user", "password": "qa-password-1"}
    address = wagerlab_chain.eth.accounts[9]
    assert wagerlab_api.post("/api/register", json={**user, "address": address}).status_code == 201
    token = wagerlab_api.post("/api/login", json=user).json()["token"]
    assert wagerlab_api.get("/api/markets", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    before = wagerlab_chain.eth.get_block("latest")["timestamp"]
    assert wagerlab_advance_time(3600) >= before + 3600
    wagerlab_websocket.send('{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}')
    assert '"result"' in wagerlab_websocket.recv(timeout=30)
    wagerlab_platform.assert_invariants()


def test_broken_report_fails(wagerlab_assert_invariants):
    wagerlab_assert_invariants({"invariants": [{"name": "conservation", "ok": False, "detail": "off by 1"}]})
'''


def _testcases(junit: Path) -> dict[str, ElementTree.Element]:
    root = ElementTree.parse(junit).getroot()
    return {case.get("name", ""): case for case in root.iter("testcase")}


@pytest.mark.slow
def test_plugin_in_new_project(tmp_path: Path) -> None:
    project = tmp_path / "qa-project"
    project.mkdir()
    shutil.copy(REPO / "scenarios" / "smoke.toml", project / "smoke.toml")
    (project / "test_scenarios.py").write_text(SCENARIO_TEST)
    (project / "test_platform.py").write_text(PLATFORM_TEST)
    junit = tmp_path / "junit.xml"

    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:ape_test", "-p", "no:cacheprovider", f"--junitxml={junit}", "-q"],
        cwd=project,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_SECONDS,
    )

    output = completed.stdout + completed.stderr
    assert completed.returncode == 1, output
    cases = _testcases(junit)
    assert set(cases) == {"test_smoke_scenario", "test_live_platform", "test_broken_report_fails"}, output
    assert list(cases["test_smoke_scenario"]) == [], output
    assert list(cases["test_live_platform"]) == [], output
    failure = cases["test_broken_report_fails"].find("failure")
    assert failure is not None
    assert "conservation: off by 1" in (failure.get("message") or "")


def test_assert_invariants_passes_held_report() -> None:
    assert_invariants({"invariants": [{"name": "ledger_balanced", "ok": True, "detail": "ok"}], "errors": []})


def test_assert_invariants_names_failures() -> None:
    report = {
        "invariants": [
            {"name": "conservation", "ok": False, "detail": "account 0xabc off by 5"},
            {"name": "ledger_balanced", "ok": True, "detail": "ok"},
        ],
        "errors": ["bettor-1 timed out"],
    }
    with pytest.raises(InvariantsFailed, match=r"conservation: account 0xabc off by 5; run error: bettor-1 timed out"):
        assert_invariants(report)


def test_assert_invariants_on_check_results() -> None:
    results = [InvariantResult("exactly_once", False, "log 0x1:0 applied twice")]
    with pytest.raises(InvariantsFailed, match="exactly_once: log 0x1:0 applied twice"):
        assert_invariants(results)
