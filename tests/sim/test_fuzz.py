"""The fuzzer: seeds, generated scenarios, replay and shrinking."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from wagerlab.sim.faults import FAULT_OPTIONS
from wagerlab.sim.fuzz import FuzzError, fuzz, parse_faults, parse_seeds, replay_command
from wagerlab.sim.generate import generate_scenario, scenario_size, scenario_to_toml, shrink_candidates
from wagerlab.sim.runner import RunResult
from wagerlab.sim.scenario import Scenario, load_scenario


@pytest.mark.parametrize(("text", "expected"), [("1..20", range(1, 21)), ("7", range(7, 8)), ("0..0", range(0, 1))])
def test_parse_seeds_accepts_ranges(text: str, expected: range) -> None:
    assert parse_seeds(text) == expected


@pytest.mark.parametrize("text", ["", "a..b", "5..1", "-1..3", "1..2..3"])
def test_parse_seeds_rejects_malformed(text: str) -> None:
    with pytest.raises(FuzzError, match="invalid --seeds"):
        parse_seeds(text)


def test_parse_faults_rejects_unknown_kind() -> None:
    with pytest.raises(FuzzError, match="meteor"):
        parse_faults("double_credit,meteor")


@pytest.mark.parametrize("text", ["", ",", " , "])
def test_parse_faults_rejects_empty_list(text: str) -> None:
    with pytest.raises(FuzzError, match=f"--faults {text!r} names no fault kind.*--faults none"):
        parse_faults(text)


def test_parse_faults_none_runs_without_faults() -> None:
    assert parse_faults("none") == []


def test_replay_command_without_faults_parses_again(tmp_path: Path) -> None:
    words = shlex.split(replay_command(7, [], tmp_path))

    assert parse_faults(words[words.index("--faults") + 1]) == []


def test_parse_faults_default_leaves_out_corruption() -> None:
    assert "double_credit" not in parse_faults(None)
    assert parse_faults("double_credit") == ["double_credit"]


def test_generated_scenario_depends_only_on_seed() -> None:
    first = scenario_to_toml(generate_scenario(11, ["double_credit"]))
    again = scenario_to_toml(generate_scenario(11, ["double_credit"]))
    other = scenario_to_toml(generate_scenario(12, ["double_credit"]))
    assert first == again
    assert first != other


@pytest.mark.parametrize("seed", range(30))
def test_generated_scenario_round_trips_through_toml(seed: int, tmp_path: Path) -> None:
    scenario = generate_scenario(seed, ["double_credit"])
    path = tmp_path / "scenario.toml"
    path.write_text(scenario_to_toml(scenario))
    loaded = load_scenario(path)
    assert loaded.markets == scenario.markets
    assert loaded.bettors == scenario.bettors
    assert loaded.faults == scenario.faults
    assert loaded.oracle == scenario.oracle
    assert loaded.odds_feed == scenario.odds_feed


@pytest.mark.parametrize("seed", range(20))
def test_generated_fault_parameters_round_trip(seed: int, tmp_path: Path) -> None:
    kinds = ["reorg", "redis_outage", "db_lock", "rpc_faults", "duplicate_delivery"]
    scenario = generate_scenario(seed, kinds)
    path = tmp_path / "scenario.toml"
    path.write_text(scenario_to_toml(scenario))

    loaded = load_scenario(path)

    assert loaded.faults == scenario.faults
    for fault in scenario.faults:
        for name, option in FAULT_OPTIONS[fault.kind].items():
            assert option.minimum <= fault.options[name] <= option.maximum


def test_fault_parameters_leave_other_draws_alone() -> None:
    with_parameters = generate_scenario(7, ["reorg"])
    without = generate_scenario(7, ["ws_drop"])

    assert len(with_parameters.faults) == 2
    assert with_parameters.markets == without.markets
    assert with_parameters.bettors == without.bettors
    assert [fault.at for fault in with_parameters.faults] == [fault.at for fault in without.faults]


def test_shrink_candidates_are_smaller() -> None:
    scenario = generate_scenario(4, ["double_credit"], max_faults=2)
    for candidate in shrink_candidates(scenario):
        assert scenario_size(candidate) < scenario_size(scenario)


class FakeRunner:
    """Fails every scenario with at least `threshold` bettors; records what it ran."""

    def __init__(self, threshold: int):
        self.threshold = threshold
        self.sizes: list[int] = []

    def __call__(self, scenario: Scenario, seed: int, run_dir: Path) -> RunResult:
        self.sizes.append(scenario.bettors.count)
        ok = scenario.bettors.count < self.threshold
        report = {
            "ok": ok,
            "invariants": [{"name": "conservation", "ok": ok, "detail": ""}],
            "errors": [],
            "trace_digest": f"digest-{seed}",
            "duration_seconds": 0.0,
            "faults": [],
        }
        return RunResult(report, run_dir / "report.json")


def test_fuzz_reports_failure_with_replay_and_shrinks(tmp_path: Path) -> None:
    runner = FakeRunner(threshold=2)
    seed = next(s for s in range(100) if generate_scenario(s, []).bettors.count >= 4)

    summary = fuzz(range(seed, seed + 1), [], tmp_path, runner=runner)

    outcome = summary.seeds[0]
    assert not summary.ok
    assert outcome.failed == ["conservation"]
    assert outcome.replay == f"wagerlab fuzz --seeds {seed}..{seed} --faults none --out {tmp_path}"
    assert outcome.shrunk_scenario is not None
    assert load_scenario(Path(outcome.shrunk_scenario)).bettors.count == 2
    assert (tmp_path / "summary.json").exists()


def test_fuzz_budget_skips_remaining_seeds(tmp_path: Path) -> None:
    summary = fuzz(range(1, 4), [], tmp_path, runner=FakeRunner(threshold=100), budget_seconds=0)
    assert [outcome.seed for outcome in summary.seeds] == [1]
    assert summary.skipped == [2, 3]


@pytest.mark.slow
def test_fuzz_replay_reproduces_trace_digest(tmp_path: Path) -> None:
    first = fuzz(range(3, 4), [], tmp_path / "first", shrink=False)
    replay = fuzz(range(3, 4), [], tmp_path / "replay", shrink=False)
    assert first.ok, first.seeds[0].failed
    assert replay.ok, replay.seeds[0].failed
    assert first.seeds[0].trace_digest == replay.seeds[0].trace_digest


def test_replay_command_keeps_planted_bug(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WAGERLAB_PLANT_BUG", "cursor_before_apply")

    command = replay_command(7, ["ws_drop"], tmp_path)

    assert command == f"WAGERLAB_PLANT_BUG=cursor_before_apply wagerlab fuzz --seeds 7..7 --faults ws_drop --out {tmp_path}"


def test_replay_command_without_planted_bug(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("WAGERLAB_PLANT_BUG", raising=False)

    command = replay_command(7, ["ws_drop"], tmp_path)

    assert command.startswith("wagerlab fuzz --seeds 7..7")
