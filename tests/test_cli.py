"""The `wagerlab` command line: shared options (config file, backends, log level, `--verbose`), argument checks, and how `up` starts, rejects a busy directory and stops."""

from __future__ import annotations

import argparse
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from wagerlab.cli import EXIT_INTERRUPTED, EXIT_INVALID_SCENARIO, _load_config, build_parser, main
from wagerlab.platform.config import Deployment, PlatformConfig
from wagerlab.sim.rundir import claim_run_dir

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


def test_help_names_every_command() -> None:
    parser = build_parser()
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))

    description = parser.description or ""

    assert [name for name in commands.choices if name not in description] == []


@pytest.mark.parametrize("option", [["--budget", "-1"], ["--budget", "nan"], ["--budget", "inf"], ["--faults", ""], ["--faults", ","]])
def test_fuzz_rejects_bad_option(option: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["fuzz", "--seeds", "1", *option, "--out", str(tmp_path / "fuzz")])

    assert code == EXIT_INVALID_SCENARIO
    err = capsys.readouterr().err
    assert err.startswith(f"wagerlab: {option[0]} ")
    assert (repr(option[1]) if option[0] == "--faults" else str(float(option[1]))) in err
    assert not (tmp_path / "fuzz").exists()


@pytest.mark.parametrize("option", [["--rate", "nan"], ["--rate", "inf"], ["--bet-interval", "1e9"], ["--bet-interval", "nan"]])
def test_loadtest_rejects_bad_numbers(option: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["loadtest", *option, "--out", str(tmp_path / "out")])

    assert code == EXIT_INVALID_SCENARIO
    assert capsys.readouterr().err.startswith(f"wagerlab: {option[0]} ")
    assert not (tmp_path / "out").exists()


def test_up_rejects_a_directory_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    held = claim_run_dir(tmp_path)
    (tmp_path / "platform.db").write_text("the first up's data")
    try:
        code = main(["up", "--out", str(tmp_path)])
    finally:
        held.release()

    err = capsys.readouterr().err
    assert code == EXIT_INVALID_SCENARIO
    assert err.count("\n") == 1
    assert f"--out {tmp_path} is in use by another wagerlab run (pid {os.getpid()})" in err
    assert "pass another --out" in err
    assert (tmp_path / "platform.db").read_text() == "the first up's data"


def test_loadtest_rejects_a_directory_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    held = claim_run_dir(tmp_path / "run")
    try:
        code = main(["loadtest", "--strategy", "ttl", "--out", str(tmp_path)])
    finally:
        held.release()

    assert code == EXIT_INVALID_SCENARIO
    assert "is in use by another wagerlab run" in capsys.readouterr().err


def test_up_rpc_node_that_never_responds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"http://127.0.0.1:{server.getsockname()[1]}"

        code = main(["up", "--rpc", url, "--out", str(tmp_path / "up")])

    err = capsys.readouterr().err
    assert code == EXIT_INVALID_SCENARIO
    assert err.count("\n") == 1
    assert f"the node at {url} accepted the connection but did not respond to eth_chainId within 5 s" in err


def test_up_interrupted_while_starting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(options: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("wagerlab.sim.up.start_platform", interrupted)

    code = main(["up", "--out", str(tmp_path)])

    err = capsys.readouterr().err
    assert code == EXIT_INTERRUPTED
    assert err == "wagerlab: interrupted while starting; every process up started was stopped\n"


class _StartedPlatform:
    stopped = False

    def urls(self) -> dict[str, str]:
        return {"gateway": "http://127.0.0.1:1"}

    def stop(self) -> None:
        self.stopped = True


@pytest.mark.parametrize(
    ("rpc", "expected"),
    [
        ([], "Ctrl-C stops the chain node and every service\n"),
        (["--rpc", "http://127.0.0.1:8545"], "Ctrl-C stops every service; the node at http://127.0.0.1:8545 keeps running\n"),
    ],
)
def test_up_says_what_ctrl_c_stops(rpc: list[str], expected: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    platform = _StartedPlatform()
    monkeypatch.setattr("wagerlab.sim.up.start_platform", lambda options: platform)
    monkeypatch.setattr("wagerlab.sim.up.run_until_stopped", lambda platform, should_stop: None)
    monkeypatch.setattr("wagerlab.sim.up.stop_on_signals", lambda: lambda: True)

    code = main(["up", *rpc, "--out", str(tmp_path)])

    assert code == 0
    assert capsys.readouterr().out.endswith(expected)
    assert platform.stopped
