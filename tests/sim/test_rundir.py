"""The run directory: never deletes a user's files, and one run at a time."""

import os
from pathlib import Path

import pytest

from wagerlab.platform.config import ConfigError, PlatformConfig
from wagerlab.sim.rundir import MARKER, RunDirError, claim_run_dir


def test_new_directory_claimed(tmp_path: Path) -> None:
    run = claim_run_dir(tmp_path / "new")
    assert (tmp_path / "new" / MARKER).exists()
    run.release()


def test_foreign_directory_rejected(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="not empty and was not written by wagerlab run"):
        claim_run_dir(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_previous_run_files_removed_others_kept(tmp_path: Path) -> None:
    claim_run_dir(tmp_path).release()
    (tmp_path / "report.json").write_text("{}")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "api.log").write_text("old")
    (tmp_path / "analysis.ipynb").write_text("mine")

    claim_run_dir(tmp_path).release()

    assert not (tmp_path / "report.json").exists()
    assert not (tmp_path / "logs").exists()
    assert (tmp_path / "analysis.ipynb").read_text() == "mine"


def test_second_concurrent_run_rejected(tmp_path: Path) -> None:
    first = claim_run_dir(tmp_path)
    (tmp_path / "platform.db").write_text("the first run's data")
    with pytest.raises(RunDirError, match=f"in use by another wagerlab run \\(pid {os.getpid()}\\).*pass another --out"):
        claim_run_dir(tmp_path)
    assert (tmp_path / "platform.db").read_text() == "the first run's data"
    first.release()
    claim_run_dir(tmp_path).release()


def test_directory_of_an_earlier_up_reused(tmp_path: Path) -> None:
    # `up` before the marker: its configs and logs, but no logs/runner.log.
    (tmp_path / "platform.json").write_text("{}")
    (tmp_path / "api-1.json").write_text("{}")
    (tmp_path / "platform.db").write_text("old")

    claim_run_dir(tmp_path).release()

    assert not (tmp_path / "platform.db").exists()


def test_file_as_out_rejected(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(RunDirError, match="is an existing file"):
        claim_run_dir(target)


@pytest.mark.parametrize(("content", "expected"), [("[]", "must be a JSON object"), ("{", "not valid JSON"), ('{"deployment": 3}', "must be a JSON object")])
def test_platform_config_rejects_malformed(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "platform.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=expected):
        PlatformConfig.load(path)


def test_platform_config_directory_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        PlatformConfig.load(tmp_path)
