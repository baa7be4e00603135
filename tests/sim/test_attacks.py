"""Attack scenarios load and validate; the attack contracts compile beside the platform's."""

from __future__ import annotations

from pathlib import Path

import pytest

from wagerlab.chain.compiler import load_artifacts
from wagerlab.sim.attacks import ATTACKS, AttackOptionsError
from wagerlab.sim.scenario import ScenarioError, load_scenario

ROOT = Path(__file__).resolve().parents[2]
ATTACK_SCENARIOS = sorted((ROOT / "scenarios" / "attacks").glob("*.toml"))


def test_attack_scenarios_cover_every_attack() -> None:
    kinds = {attack.kind for path in ATTACK_SCENARIOS for attack in load_scenario(path).attacks}

    assert kinds == set(ATTACKS)


@pytest.mark.parametrize("path", ATTACK_SCENARIOS, ids=lambda path: path.stem)
def test_attack_scenario_loads(path: Path) -> None:
    scenario = load_scenario(path)

    assert [attack.kind for attack in scenario.attacks] == [path.stem]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('kind = "teleport"', "attacks\\[0\\].kind"),
        ('kind = "api_flood"\nat = "lunch"', "attacks\\[0\\].at"),
        ('kind = "api_flood"\nrequests = 0', "attacks\\[0\\].requests"),
        ('kind = "api_flood"\nspeed = 3', "attacks\\[0\\].speed"),
    ],
)
def test_attack_table_rejects_invalid(tmp_path: Path, table: str, message: str) -> None:
    base = (ROOT / "scenarios" / "attacks" / "api_flood.toml").read_text()
    path = tmp_path / "bad.toml"
    path.write_text(base.split("[[attacks]]")[0] + "[[attacks]]\n" + table + "\n\n[house]" + base.split("[house]")[1])

    with pytest.raises(ScenarioError, match=message):
        load_scenario(path)


def test_gateway_table_rejects_unknown_limit(tmp_path: Path) -> None:
    base = (ROOT / "scenarios" / "smoke.toml").read_text()
    path = tmp_path / "bad.toml"
    path.write_text(base + "\n[gateway]\nip_requestz = 5\n")

    with pytest.raises(ScenarioError, match="unknown security limits"):
        load_scenario(path)


def test_attack_options_reject_bool() -> None:
    with pytest.raises(AttackOptionsError, match="positive integer"):
        ATTACKS["brute_force"].check_options({"attempts": True})


def test_attack_contracts_compile_beside_platform() -> None:
    names = set(load_artifacts())

    assert {"Sportsbook", "ResultOracle", "WagerToken"} <= names
    assert {"VulnerableSportsbook", "ClaimReentrancyAttacker"} <= names
