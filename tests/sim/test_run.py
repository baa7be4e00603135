"""Whole runs through the CLI: real node, services and monitors as processes on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scenarios" / "smoke.toml"
RUN_TIMEOUT_SECONDS = 300

pytestmark = pytest.mark.slow


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wagerlab", "run", *args, "--no-progress"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        cwd=ROOT,
    )


def load_report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def smoke_seed_one(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = tmp_path_factory.mktemp("smoke-seed1-a")
    result = run_cli(str(SMOKE), "--seed", "1", "--out", str(out))
    return result, load_report(out)


def test_smoke_holds_every_invariant(smoke_seed_one: tuple[subprocess.CompletedProcess[str], dict]) -> None:
    result, report = smoke_seed_one
    failed = [item for item in report["invariants"] if not item["ok"]]
    assert result.returncode == 0, result.stdout + result.stderr
    assert failed == []
    assert report["ok"] is True
    assert report["errors"] == []


def test_smoke_report_counts(smoke_seed_one: tuple[subprocess.CompletedProcess[str], dict]) -> None:
    _, report = smoke_seed_one
    counts = report["counts"]
    assert counts["users"] == 6
    assert counts["deposits_credited"] == 6
    assert counts["bets_placed"] == 18
    assert counts["bets_settled"] == 18
    assert counts["odds_reads"] == 18 * 5
    assert counts["payouts_claimed"] >= 1
    assert {"scenario", "seed", "started_at", "finished_at", "trace_digest"} <= set(report)
    assert [item["name"] for item in report["invariants"]] == [
        "conservation",
        "ledger_balanced",
        "exactly_once",
        "bets_match",
        "settlement",
        "scenario_completed",
    ]


def test_same_seed_same_trace_digest(
    smoke_seed_one: tuple[subprocess.CompletedProcess[str], dict], tmp_path: Path
) -> None:
    _, first = smoke_seed_one
    again = run_cli(str(SMOKE), "--seed", "1", "--out", str(tmp_path / "again"))
    other = run_cli(str(SMOKE), "--seed", "2", "--out", str(tmp_path / "other"))

    assert again.returncode == 0, again.stderr
    assert other.returncode == 0, other.stderr
    assert load_report(tmp_path / "again")["trace_digest"] == first["trace_digest"]
    assert load_report(tmp_path / "other")["trace_digest"] != first["trace_digest"]


def test_double_credit_fails_conservation(tmp_path: Path) -> None:
    scenario = tmp_path / "double_credit.toml"
    text = SMOKE.read_text().replace("count = 6", "count = 2").replace("bets_per_bettor = 3", "bets_per_bettor = 1")
    scenario.write_text(text + '\n[[faults]]\nkind = "double_credit"\nat = "onboarding"\n')

    result = run_cli(str(scenario), "--out", str(tmp_path / "out"))
    report = load_report(tmp_path / "out")
    verdicts = {item["name"]: item["ok"] for item in report["invariants"]}

    assert result.returncode == 1, result.stdout + result.stderr
    assert verdicts["conservation"] is False
    assert verdicts["exactly_once"] is True
    assert report["faults"][0]["kind"] == "double_credit"
    assert report["faults"][0]["at"] == "onboarding"
    assert "FAILED" in result.stdout


def test_invalid_scenario_exits_2_with_one_line(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text(SMOKE.read_text().replace("count = 6", "count = -1"))
    out = tmp_path / "out"

    result = run_cli(str(scenario), "--out", str(out))

    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "bettors.count" in result.stderr
    assert str(scenario) in result.stderr
    assert not out.exists()


def test_reorg_deposit_mid_betting_keeps_bets(tmp_path: Path) -> None:
    scenario = tmp_path / "reorg_mid_betting.toml"
    scenario.write_text(SMOKE.read_text() + '\n[[faults]]\nkind = "reorg_deposit"\nat = "mid-betting"\n')

    result = run_cli(str(scenario), "--out", str(tmp_path / "out"))
    report = load_report(tmp_path / "out")
    verdicts = {item["name"]: item["ok"] for item in report["invariants"]}
    fault = report["faults"][0]

    assert result.returncode == 0, result.stdout + result.stderr
    assert verdicts["scenario_completed"] is True
    assert verdicts["bets_match"] is True
    assert fault["kind"] == "reorg_deposit"
    assert fault["at"] == "mid-betting"
