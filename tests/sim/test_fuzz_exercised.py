"""Whether each injected fault was exercised: the injectors' entries, the fuzzer's counts, and where the generator places faults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wagerlab.sim import faults
from wagerlab.sim.fuzz import count_faults, describe_fault_counts, fuzz
from wagerlab.sim.generate import FAULT_PHASES, MID_PHASE_FAULTS, MID_PHASE_POINTS, generate_scenario
from wagerlab.sim.outages import FaultResult
from wagerlab.sim.runner import RunResult
from wagerlab.sim.scenario import MID_PHASES, Scenario


def test_inject_records_exercised_and_evidence(monkeypatch: pytest.MonkeyPatch) -> None:
    result = FaultResult("dropped 0 connections", False, {"connections_dropped": 0})
    monkeypatch.setitem(faults.INJECTORS, "ws_drop", lambda context: result)

    entry = faults.inject("ws_drop", "mid-betting", None)  # type: ignore[arg-type]

    assert entry["kind"] == "ws_drop"
    assert entry["at"] == "mid-betting"
    assert entry["detail"] == "dropped 0 connections"
    assert entry["exercised"] is False
    assert entry["evidence"] == {"connections_dropped": 0}


def test_count_faults_per_kind() -> None:
    injected = [
        {"kind": "redis_outage", "exercised": True},
        {"kind": "redis_outage", "exercised": False},
        {"kind": "db_lock", "exercised": True},
    ]

    counts = count_faults(injected)

    assert counts == {"db_lock": {"injected": 1, "exercised": 1}, "redis_outage": {"injected": 2, "exercised": 1}}
    assert describe_fault_counts(counts) == "db_lock 1 of 1 exercised, redis_outage 1 of 2 exercised"
    assert describe_fault_counts({}) == "no faults"


class FaultRunner:
    """Passes every scenario; marks each fault exercised unless its kind is in `quiet`."""

    def __init__(self, quiet: set[str]) -> None:
        self.quiet = quiet

    def __call__(self, scenario: Scenario, seed: int, run_dir: Path) -> RunResult:
        injected: list[dict[str, Any]] = [
            {"kind": fault.kind, "at": fault.at, "detail": "", "exercised": fault.kind not in self.quiet, "evidence": {}}
            for fault in scenario.faults
        ]
        report = {"ok": True, "invariants": [], "errors": [], "trace_digest": f"digest-{seed}", "duration_seconds": 0.0, "faults": injected}
        return RunResult(report, run_dir / "report.json")


def test_fuzz_summary_counts_exercised_faults(tmp_path: Path) -> None:
    kinds = ["db_lock", "ws_drop"]
    seeds = range(1, 11)
    drawn = [fault.kind for seed in seeds for fault in generate_scenario(seed, kinds).faults]

    summary = fuzz(seeds, kinds, tmp_path, runner=FaultRunner(quiet={"ws_drop"}))
    written = json.loads((tmp_path / "summary.json").read_text())

    expected = {kind: {"injected": drawn.count(kind), "exercised": drawn.count(kind) if kind == "db_lock" else 0} for kind in sorted(set(drawn))}
    assert drawn.count("db_lock") > 0
    assert drawn.count("ws_drop") > 0
    assert summary.fault_counts() == expected
    assert written["fault_counts"] == expected
    assert written["faults_injected"] == len(drawn)
    assert written["faults_exercised"] == drawn.count("db_lock")
    assert sum(outcome.faults.get("db_lock", {}).get("injected", 0) for outcome in summary.seeds) == drawn.count("db_lock")


@pytest.mark.parametrize("seed", range(40))
def test_biting_faults_drawn_mid_phase(seed: int) -> None:
    scenario = generate_scenario(seed, sorted(MID_PHASE_FAULTS | {"ws_drop", "monitor_crash"}))

    for fault in scenario.faults:
        if fault.kind in MID_PHASE_FAULTS:
            assert fault.at in MID_PHASE_POINTS[fault.kind], fault
        else:
            assert fault.at in FAULT_PHASES, fault


def test_mid_phase_points_are_mid_phases() -> None:
    for kind, points in MID_PHASE_POINTS.items():
        assert points, kind
        assert set(points) <= set(MID_PHASES), kind
    assert "mid-claims" not in MID_PHASE_POINTS["redis_outage"]
    assert "mid-onboarding" not in MID_PHASE_POINTS["gateway_restart"]


def test_mid_phase_draw_leaves_other_draws_alone() -> None:
    window = generate_scenario(7, ["rpc_faults"])
    other = generate_scenario(7, ["ws_drop"])

    assert len(window.faults) == 2
    assert window.markets == other.markets
    assert window.bettors == other.bettors
    assert window.odds_feed == other.odds_feed
    assert window.oracle == other.oracle
    assert all(fault.at in MID_PHASES for fault in window.faults)
