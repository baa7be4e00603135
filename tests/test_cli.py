"""Options several `wagerlab` commands share: the platform config file, its backend overrides, the log level and `--verbose`."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from wagerlab.cli import EXIT_INVALID_SCENARIO, _load_config, build_parser, main
from wagerlab.platform.config import Deployment, PlatformConfig

DEPLOYMENT = Deployment(chain_id=31337, token="0x" + "11" * 20, sportsbook="0x" + "22" * 20, oracle="0x" + "33" * 20, start_block=1)


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    """Undo the stderr handler and level that `main` gives the root logger."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    config = PlatformConfig(
        rpc_url="http://127.0.0.1:9",
        ws_url="ws://127.0.0.1:9",
        db_url="sqlite:///from-file.db",
        redis_url="redis://127.0.0.1:6379/7",
        deployment=DEPLOYMENT,
        operator_key="0x01",
        odds_signer_key="0x02",
        guardian_key="0x03",
        admin_token="token",
    )
    path = tmp_path / "platform.json"
    config.dump(path)
    return path


@pytest.mark.parametrize("command", [["serve", "api"], ["reconcile"]])
def test_config_missing_exits_2(command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "absent.json"

    code = main([*command, "--config", str(missing)])

    assert code == EXIT_INVALID_SCENARIO
    stderr = capsys.readouterr().err
    assert f"platform config {str(missing)!r} not found" in stderr
    assert "pass the file `wagerlab run` wrote" in stderr


@pytest.mark.parametrize("command", [["serve", "monitors"], ["reconcile"]])
def test_config_invalid_json_exits_2(command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")

    code = main([*command, "--config", str(broken)])

    assert code == EXIT_INVALID_SCENARIO
    assert "is not valid JSON" in capsys.readouterr().err


def test_load_config_without_overrides(config_path: Path) -> None:
    args = build_parser().parse_args(["reconcile", "--config", str(config_path)])

    config = _load_config(args)

    assert config == PlatformConfig.load(config_path)


def test_load_config_applies_db_and_redis(config_path: Path) -> None:
    args = build_parser().parse_args(
        ["serve", "api", "--config", str(config_path), "--db", "postgresql+psycopg://postgres@127.0.0.1:5432/x", "--redis", "redis://127.0.0.1:6379/8"]
    )

    config = _load_config(args)

    assert config is not None
    assert config.db_url == "postgresql+psycopg://postgres@127.0.0.1:5432/x"
    assert config.redis_url == "redis://127.0.0.1:6379/8"
    assert config.deployment == DEPLOYMENT


def test_load_config_missing_returns_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["reconcile", "--config", str(tmp_path / "absent.json")])

    assert _load_config(args) is None
    assert "not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "default"),
    [(["serve", "api"], "info"), (["reconcile"], "warning"), (["chain"], "info")],
)
def test_log_level_defaults(command: list[str], default: str, config_path: Path) -> None:
    extra = [] if command == ["chain"] else ["--config", str(config_path)]

    args = build_parser().parse_args([*command, *extra])

    assert args.log_level == default


@pytest.mark.parametrize("command", [["serve", "api"], ["reconcile"]])
def test_config_option_required(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(command)

    assert exit_info.value.code == 2
    assert "--config" in capsys.readouterr().err


def test_log_level_rejects_unknown(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["reconcile", "--config", str(config_path), "--log-level", "verbose"])

    assert exit_info.value.code == 2
    assert "invalid choice: 'verbose'" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["run", "x.toml"], ["fuzz", "--seeds", "1"], ["up"], ["loadtest"]])
def test_verbose_option(command: list[str]) -> None:
    parser = build_parser()

    assert parser.parse_args(command).verbose is False
    assert parser.parse_args([*command, "-v"]).verbose is True
    assert parser.parse_args([*command, "--verbose"]).verbose is True


@pytest.mark.parametrize("service", ["api", "chainapi", "monitors", "stream"])
def test_no_contract_monitor_gateway_only(service: str, config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", service, "--config", str(config_path), "--no-contract-monitor"])

    assert code == EXIT_INVALID_SCENARIO
    assert f"--no-contract-monitor applies to the gateway only, not to {service}" in capsys.readouterr().err
