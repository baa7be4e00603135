"""`wagerlab forensics`: filters by IP, account and time, and refuses a broken hash chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wagerlab.cli import main
from wagerlab.platform.gateway.forensics import ForensicLog, ForensicLogError, verify_chain


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "forensics.jsonl"
    log = ForensicLog(path)
    log.append({"at": 100.0, "ip": "192.0.2.1", "account": "alice", "path": "/api/login", "body": {"password": "pw"}})
    log.append({"at": 200.0, "ip": "192.0.2.2", "account": "bob", "path": "/api/bets"})
    log.append({"at": 300.0, "ip": "192.0.2.1", "account": None, "path": "/api/markets"})
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, object]], str]:
    code = main(["forensics", *args])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_forensics_cli_filters_by_ip(log_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, entries, err = run(capsys, "--log", str(log_path), "--ip", "192.0.2.1")

    assert code == 0
    assert [entry["path"] for entry in entries] == ["/api/login", "/api/markets"]
    assert entries[0]["body"] == {"password": "[redacted]"}
    assert "2 of 3 entries match" in err


def test_forensics_cli_filters_by_account_and_time(log_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, by_account, _ = run(capsys, "--log", str(log_path), "--account", "bob")
    _, by_time, _ = run(capsys, "--log", str(log_path), "--since", "150", "--until", "1970-01-01T00:05:00")

    assert [entry["ip"] for entry in by_account] == ["192.0.2.2"]
    assert [entry["at"] for entry in by_time] == [200.0, 300.0]


def test_forensics_cli_rejects_broken_chain(log_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = log_path.read_text().splitlines()
    log_path.write_text("\n".join([lines[0], lines[2]]) + "\n")

    code, entries, err = run(capsys, "--log", str(log_path))

    assert code == 1
    assert entries == []
    assert "entry 2 does not follow entry 1" in err


def test_torn_last_entry_set_aside(log_path: Path) -> None:
    complete = log_path.read_bytes()
    log_path.write_bytes(complete + b'{"seq":4,"at":400.0,"ip":"192.0.')

    log = ForensicLog(log_path)
    entry = log.append({"at": 500.0, "ip": "192.0.2.3", "account": None, "path": "/api/odds"})

    assert entry["seq"] == 4
    assert log_path.read_bytes().startswith(complete)
    assert verify_chain(log_path) == 4
    torn = log_path.with_name(log_path.name + ".torn")
    assert torn.read_bytes() == b'{"seq":4,"at":400.0,"ip":"192.0.\n'


def test_broken_middle_line_still_rejected(log_path: Path) -> None:
    lines = log_path.read_bytes().splitlines(keepends=True)
    log_path.write_bytes(lines[0] + b"not json\n" + lines[2])

    with pytest.raises(ForensicLogError, match="line 2 is not JSON"):
        ForensicLog(log_path)
