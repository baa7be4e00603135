"""`wagerlab fuzz`: random scenarios and faults drawn from seeds, each failure replayable.

Every seed yields one scenario and one fault schedule (`wagerlab.sim.generate`), run on
the full stack with every invariant checked. A failing seed is printed with the one
command that replays it, and shrunk to a smaller scenario that still fails.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wagerlab.sim.faults import INJECTORS
from wagerlab.sim.generate import generate_scenario, scenario_size, scenario_to_toml, shrink_candidates
from wagerlab.sim.runner import RunResult, run_scenario
from wagerlab.sim.scenario import Scenario, load_scenario

logger = logging.getLogger(__name__)

CORRUPTING_FAULTS = frozenset({"double_credit", "bet_stake_edit"})
"""Faults that corrupt the database on purpose. The fuzzer leaves them out by default
because a run with one of them is expected to fail unless reconciliation repairs it."""

MAX_SHRINK_RUNS = 8
NO_FAULTS = "none"
"""The `--faults` value that runs the seeds without faults."""
PLANT_BUG_VARIABLE = "WAGERLAB_PLANT_BUG"
"""The variable that plants a known monitor bug (see the monitors' base module), kept in replay commands."""


class FuzzError(Exception):
    """Invalid fuzzer arguments, such as a malformed seed range or an unknown fault kind."""


def parse_seeds(text: str) -> range:
    """Parse `A..B` (inclusive) or a single seed `A`."""
    start_text, separator, end_text = text.partition("..")
    try:
        start = int(start_text)
        end = int(end_text) if separator else start
    except ValueError as err:
        raise FuzzError(f"invalid --seeds {text!r}: expected A..B with integers, e.g. 1..20") from err
    if start < 0 or end < start:
        raise FuzzError(f"invalid --seeds {text!r}: expected 0 <= A <= B")
    return range(start, end + 1)


def parse_faults(text: str | None) -> list[str]:
    """Parse a comma-separated fault list; None selects every fault the platform must survive, NO_FAULTS none.

    A list that names no kind, such as "" or ",", is an error rather than a run without faults.
    """
    if text is None:
        return sorted(set(INJECTORS) - CORRUPTING_FAULTS)
    if text.strip() == NO_FAULTS:
        return []
    kinds = [kind.strip() for kind in text.split(",") if kind.strip()]
    if not kinds:
        raise FuzzError(f"--faults {text!r} names no fault kind; list some, or pass --faults {NO_FAULTS} to run without faults")
    unknown = [kind for kind in kinds if kind not in INJECTORS]
    if unknown:
        raise FuzzError(f"unknown fault kind(s) {unknown} in --faults; expected some of {sorted(INJECTORS)}")
    return kinds


@dataclass
class SeedOutcome:
    seed: int
    ok: bool
    trace_digest: str | None
    duration_seconds: float
    failed: list[str]
    report: str
    replay: str
    shrunk_scenario: str | None = None
    faults: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per fault kind, `{"injected": N, "exercised": M}`: how many struck and how many touched any work."""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class FuzzSummary:
    seeds: list[SeedOutcome] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(outcome.ok for outcome in self.seeds)

    def fault_counts(self) -> dict[str, dict[str, int]]:
        """Sum the seeds' injected and exercised counts per fault kind."""
        totals: dict[str, dict[str, int]] = {}
        for outcome in self.seeds:
            for kind, counts in outcome.faults.items():
                total = totals.setdefault(kind, {"injected": 0, "exercised": 0})
                total["injected"] += counts["injected"]
                total["exercised"] += counts["exercised"]
        return dict(sorted(totals.items()))


def count_faults(injected: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Count a report's fault entries per kind: `{kind: {"injected": N, "exercised": M}}`."""
    counts: dict[str, dict[str, int]] = {}
    for fault in injected:
        entry = counts.setdefault(fault["kind"], {"injected": 0, "exercised": 0})
        entry["injected"] += 1
        entry["exercised"] += int(bool(fault.get("exercised")))
    return dict(sorted(counts.items()))


def describe_fault_counts(counts: dict[str, dict[str, int]]) -> str:
    """Write counts as `redis_outage 1 of 2 exercised, db_lock 1 of 1 exercised`, or `no faults`."""
    if not counts:
        return "no faults"
    return ", ".join(f"{kind} {entry['exercised']} of {entry['injected']} exercised" for kind, entry in counts.items())


def replay_command(seed: int, faults: list[str], out_dir: Path) -> str:
    """Return the command that replays `seed`, with the planted bug's variable when it is set."""
    fault_list = ",".join(faults) if faults else NO_FAULTS
    planted = os.environ.get(PLANT_BUG_VARIABLE, "")
    prefix = f"{PLANT_BUG_VARIABLE}={shlex.quote(planted)} " if planted else ""
    return f"{prefix}wagerlab fuzz --seeds {seed}..{seed} --faults {fault_list} --out {out_dir}"


Runner = Callable[[Scenario, int, Path], RunResult]


def _run(scenario: Scenario, seed: int, run_dir: Path) -> RunResult:
    return run_scenario(scenario, seed=seed, run_dir=run_dir, show_progress=False)


def fuzz(
    seeds: range,
    faults: list[str],
    out_dir: Path,
    *,
    budget_seconds: float | None = None,
    shrink: bool = True,
    runner: Runner = _run,
    on_outcome: Callable[[SeedOutcome], None] | None = None,
) -> FuzzSummary:
    """Run every seed (until the budget is spent) and write OUT_DIR/summary.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    summary = FuzzSummary()
    for seed in seeds:
        # The first seed always runs, so a budget never produces an empty campaign.
        if budget_seconds is not None and summary.seeds and time.monotonic() - started > budget_seconds:
            summary.skipped.append(seed)
            continue
        outcome = _run_seed(seed, faults, out_dir, runner)
        if not outcome.ok and shrink:
            outcome.shrunk_scenario = _shrink(seed, faults, out_dir, runner)
        summary.seeds.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    fault_counts = summary.fault_counts()
    _write_json(out_dir / "summary.json", {
        "ok": summary.ok,
        "faults": faults,
        "fault_counts": fault_counts,
        "faults_injected": sum(entry["injected"] for entry in fault_counts.values()),
        "faults_exercised": sum(entry["exercised"] for entry in fault_counts.values()),
        "seeds": [outcome.as_dict() for outcome in summary.seeds],
        "skipped_for_budget": summary.skipped,
    })
    return summary


def _run_seed(seed: int, faults: list[str], out_dir: Path, runner: Runner) -> SeedOutcome:
    # The scenario file sits beside the run directory: a run only reuses a directory that
    # contains nothing but an earlier run's files.
    seed_dir = out_dir / f"seed-{seed}"
    scenario_path = out_dir / f"seed-{seed}.toml"
    scenario_path.write_text(scenario_to_toml(generate_scenario(seed, faults)))
    # Load the written file back, so the run uses exactly what a replay from the file would.
    scenario = load_scenario(scenario_path)

    logger.info("fuzz seed %d: %s", seed, scenario.description)
    result = runner(scenario, seed, seed_dir)
    report = result.report
    failed = [item["name"] for item in report["invariants"] if not item["ok"]] + [f"error: {e}" for e in report["errors"]]
    return SeedOutcome(
        seed=seed,
        ok=result.ok,
        trace_digest=report["trace_digest"],
        duration_seconds=report["duration_seconds"],
        failed=failed,
        report=str(result.report_path),
        replay=replay_command(seed, faults, out_dir),
        faults=count_faults(report["faults"]),
    )


def _shrink(seed: int, faults: list[str], out_dir: Path, runner: Runner) -> str | None:
    """Search for a smaller scenario that still fails; return the path of the smallest found.

    Each step tries the one-step-simpler variants, smallest first, and keeps the first that
    still fails. The search stops after MAX_SHRINK_RUNS runs or when no variant fails.
    """
    current = load_scenario(out_dir / f"seed-{seed}.toml")
    smallest: Path | None = None
    runs = 0
    progressed = True
    while progressed and runs < MAX_SHRINK_RUNS:
        progressed = False
        for candidate in sorted(shrink_candidates(current), key=scenario_size):
            if runs == MAX_SHRINK_RUNS:
                break
            run_dir = out_dir / f"seed-{seed}-shrink-{runs}"
            path = out_dir / f"seed-{seed}-shrink-{runs}.toml"
            path.write_text(scenario_to_toml(candidate))
            runs += 1
            if not runner(load_scenario(path), seed, run_dir).ok:
                logger.info("fuzz seed %d: still fails at size %d (%s)", seed, scenario_size(candidate), path)
                current, smallest, progressed = candidate, path, True
                break
    return str(smallest) if smallest else None


def _write_json(path: Path, data: Any) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(partial, path)
