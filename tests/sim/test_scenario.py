"""Scenario files: the shipped ones load, and every invalid value is named in one line."""

import os
from pathlib import Path

import pytest

from wagerlab.sim.scenario import ScenarioError, load_scenario

ROOT = Path(__file__).resolve().parents[2]

VALID = """
[scenario]
name = "tiny"
seed = 3

[house]
funding = 1_000_000_000

[[markets]]
market_id = 1
name = "Bout"
outcomes = ["Red", "Blue"]
odds = ["1.5", "2.5"]
liability_cap = 1_000_000_000

[bettors]
count = 2
faucet = 100_000_000
deposit = 50_000_000
bets_per_bettor = 2
stake_min = 1_000_000
stake_max = 10_000_000
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["smoke.toml", "fight_night.toml"])
def test_shipped_scenarios_load(name: str) -> None:
    scenario = load_scenario(ROOT / "scenarios" / name)
    assert scenario.markets
    assert scenario.bettors.count >= 1


def test_fight_night_meets_its_size() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "fight_night.toml")
    assert len(scenario.markets) >= 5
    assert scenario.bettors.count >= 200
    assert scenario.bettors.count * scenario.bettors.bets_per_bettor >= 1_000
    assert scenario.odds_feed.moves > 0


def test_valid_file_converts_odds_to_fixed_point(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, VALID))
    assert scenario.markets[0].odds == (1_500_000, 2_500_000)
    assert scenario.markets[0].result == "random"
    assert scenario.seed == 3


@pytest.mark.parametrize(
    ("old", "new", "key", "expected"),
    [
        ('count = 2', 'count = -3', "bettors.count", "an integer from 1"),
        ('count = 2', 'count = "two"', "bettors.count", "an integer from 1"),
        ('odds = ["1.5", "2.5"]', 'odds = ["1.5"]', "markets[0].odds", "a list of 2 decimal odds"),
        ('odds = ["1.5", "2.5"]', 'odds = ["1.0", "2.5"]', "markets[0].odds", "greater than 1"),
        ('odds = ["1.5", "2.5"]', 'odds = [1.5, 2.5]', "markets[0].odds", "decimal odds strings"),
        ('outcomes = ["Red", "Blue"]', 'outcomes = ["Red"]', "markets[0].outcomes", "2 to 8 outcome names"),
        ('market_id = 1', 'market_id = 0', "markets[0].market_id", "an integer from 1"),
        ('stake_max = 10_000_000', 'stake_max = 500', "bettors.stake_max", "at least bettors.stake_min"),
        ('stake_max = 10_000_000', 'stake_max = 40_000_000', "bettors.stake_max", "at most the deposit"),
        ('deposit = 50_000_000', 'deposit = 500_000_000', "bettors.deposit", "at most bettors.faucet"),
        ('funding = 1_000_000_000', 'funding = 0', "house.funding", "an integer from 1"),
        ('seed = 3', 'seed = 3\ncolour = "red"', "scenario.colour", "one of"),
        ('liability_cap = 1_000_000_000', 'liability_cap = 1_000_000_000\nresult = 5', "markets[0].result", "an outcome index from 0 to 1"),
    ],
)
def test_invalid_value_names_key(tmp_path: Path, old: str, new: str, key: str, expected: str) -> None:
    assert old in VALID
    path = write(tmp_path, VALID.replace(old, new, 1))
    with pytest.raises(ScenarioError, match=expected) as caught:
        load_scenario(path)
    assert caught.value.key == key
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_duplicate_market_id_rejected(tmp_path: Path) -> None:
    market = VALID[VALID.index("[[markets]]") : VALID.index("[bettors]")]
    path = write(tmp_path, VALID.replace("[bettors]", market + "[bettors]"))
    with pytest.raises(ScenarioError, match="not used by an earlier market") as caught:
        load_scenario(path)
    assert caught.value.key == "markets[1].market_id"


def test_missing_file_says_not_found(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="file not found"):
        load_scenario(tmp_path / "absent.toml")


def test_broken_toml_rejected(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(write(tmp_path, "[scenario\n"))


def test_unknown_fault_kind_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + '\n[[faults]]\nkind = "meteor"\n')
    with pytest.raises(ScenarioError, match="one of") as caught:
        load_scenario(path)
    assert caught.value.key == "faults[0].kind"


def test_fault_parameters_default_and_set(tmp_path: Path) -> None:
    text = VALID + '\n[[faults]]\nkind = "reorg"\n\n[[faults]]\nkind = "rpc_faults"\nat = "mid-betting"\nseconds = 2\nfail_percent = 30\n'

    faults = load_scenario(write(tmp_path, text)).faults

    assert faults[0].options == {"depth": 2}
    assert faults[1].at == "mid-betting"
    assert faults[1].options == {"seconds": 2, "fail_percent": 30, "delay_percent": 20, "delay_ms": 200}


@pytest.mark.parametrize(
    ("fault", "key", "message"),
    [
        ('kind = "reorg"\ndepth = 4', "faults[0].depth", "an integer from 1 to 3, got 4"),
        ('kind = "db_lock"\nseconds = 0', "faults[0].seconds", "an integer from 1 to 6, got 0"),
        ('kind = "rpc_faults"\nfail_percent = "10"', "faults[0].fail_percent", "an integer from 0 to 30"),
        ('kind = "ws_drop"\nseconds = 3', "faults[0].seconds", "one of ['at', 'kind']"),
        ('kind = "redis_outage"\ndepth = 1', "faults[0].depth", "one of ['at', 'kind', 'seconds']"),
    ],
)
def test_fault_parameter_invalid(tmp_path: Path, fault: str, key: str, message: str) -> None:
    path = write(tmp_path, VALID + "\n[[faults]]\n" + fault + "\n")

    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)

    assert caught.value.key == key
    assert message in str(caught.value)


@pytest.mark.parametrize("toml_name", ['"../../escape"', '"a/b"', '".hidden"', '"a\\u0000b"', '"' + "x" * 65 + '"'])
def test_scenario_name_cannot_be_a_path(tmp_path: Path, toml_name: str) -> None:
    path = write(tmp_path, VALID.replace('name = "tiny"', f"name = {toml_name}"))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert caught.value.key == "scenario.name"


def test_directory_path_rejected(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="is a directory"):
        load_scenario(tmp_path)


def test_unreadable_file_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    path.chmod(0)
    if os.access(path, os.R_OK):
        pytest.skip("running as a user who reads files without permission (root)")
    with pytest.raises(ScenarioError, match="cannot be read"):
        load_scenario(path)


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('name = "Bout"', 'name = "' + "b" * 201 + '"', "markets[0].name"),
        ('outcomes = ["Red", "Blue"]', 'outcomes = ["' + "r" * 101 + '", "Blue"]', "markets[0].outcomes"),
        ('odds = ["1.5", "2.5"]', 'odds = ["1.5", "99999999999999.5"]', "markets[0].odds"),
    ],
)
def test_values_the_api_rejects_are_rejected_early(tmp_path: Path, old: str, new: str, key: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, VALID.replace(old, new, 1)))
    assert caught.value.key == key


def test_long_value_shortened_in_message(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace('name = "Bout"', 'name = "' + "b" * 5_000 + '"', 1))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert len(str(caught.value)) < 400
