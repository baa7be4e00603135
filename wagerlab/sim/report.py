"""report.json and the summary table printed at the end of a run."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from wagerlab.platform.config import Deployment
from wagerlab.sim.invariants import InvariantResult
from wagerlab.sim.scenario import Scenario
from wagerlab.sim.trace import Trace


def iso_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_report(
    *,
    scenario: Scenario,
    seed: int,
    started_at: float,
    finished_at: float,
    counts: dict[str, int],
    invariants: list[InvariantResult],
    trace: Trace | None,
    faults: list[dict[str, Any]],
    alerts: list[dict[str, Any]],
    errors: list[str],
    attacks: list[dict[str, Any]] | None = None,
    deployment: Deployment | None,
) -> dict[str, Any]:
    attacks = attacks or []
    ok = not errors and bool(invariants) and all(result.ok for result in invariants) and all(attack["ok"] for attack in attacks)
    return {
        "scenario": scenario.name,
        "scenario_file": scenario.path,
        "seed": seed,
        "ok": ok,
        "started_at": iso_time(started_at),
        "finished_at": iso_time(finished_at),
        "duration_seconds": round(finished_at - started_at, 3),
        "counts": counts,
        "invariants": [result.as_dict() for result in invariants],
        "trace_digest": trace.digest() if trace else None,
        "trace_actions": trace.action_count() if trace else 0,
        "faults": [{key: fault[key] for key in ("kind", "at", "detail", "exercised", "evidence")} for fault in faults],
        "alerts": alerts,
        "attacks": attacks,
        "errors": errors,
        "deployment": asdict(deployment) if deployment else None,
    }


def write_report(run_dir: Path, report: dict[str, Any], trace: Trace | None) -> Path:
    """Write report.json (and trace.json) atomically, so a reader never sees half a file."""
    if trace is not None:
        _write_json(run_dir / "trace.json", {"digest": trace.digest(), "actors": dict(trace.ordered())})
    path = run_dir / "report.json"
    _write_json(path, report)
    return path


def _write_json(path: Path, data: Any) -> None:
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(partial, path)


def print_summary(report: dict[str, Any], report_path: Path, console: Console | None = None) -> None:
    console = console or Console()
    counts = Table(title=f"{report['scenario']}, seed {report['seed']}")
    counts.add_column("count")
    counts.add_column("value", justify="right")
    counts.add_row("duration (s)", f"{report['duration_seconds']:.1f}")
    for name, value in report["counts"].items():
        counts.add_row(name, f"{value:,}")
    console.print(counts)

    invariants = Table(title="invariants")
    invariants.add_column("invariant")
    invariants.add_column("result")
    invariants.add_column("detail", overflow="fold")
    for result in report["invariants"]:
        invariants.add_row(result["name"], "[green]held[/]" if result["ok"] else "[red]FAILED[/]", result["detail"])
    console.print(invariants)

    for alert in report["alerts"]:
        console.print(f"alert {alert['rule']} ({alert['severity']}) at {alert['at']}: {alert['detail']}")
    for attack in report.get("attacks", []):
        verdict = "[green]detected and contained[/]" if attack["ok"] else "[red]NOT detected or contained[/]"
        console.print(f"attack {attack['kind']} after {attack['at']}: {verdict}: {attack['detail']}; checks {attack['checks']}")
    for fault in report["faults"]:
        exercised = "exercised" if fault.get("exercised") else "[yellow]not exercised[/]"
        console.print(f"fault injected at {fault['at']}: {fault['kind']} ({exercised}): {fault['detail']}")
    for error in report["errors"]:
        console.print(f"[red]error:[/] {error}")
    verdict = "[green]every invariant held[/]" if report["ok"] else "[red]the run FAILED[/]"
    console.print(f"{verdict}; trace digest {report['trace_digest']}; report: {report_path}")
