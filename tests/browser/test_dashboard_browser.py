"""The dashboard in headless chromium during a real run: live numbers, and pause stops bets.

The test starts `wagerlab run` on a small scenario whose betting phase lasts some seconds.
It opens `/dashboard` of that run's api in Debian's chromium over the DevTools protocol,
waits for the bet count to change and presses Pause. Then it checks in the run's database
and api log that no bet was mined after the pause and that bets sent after it were
rejected. Screenshots go to runs/browser-test/ (or $WAGERLAB_BROWSER_ARTIFACTS), and the
test prints that path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cdp import Browser, find_chromium
from sqlmodel import Session, col, select

from wagerlab.platform.db import Bet, ChainTransaction, TxStatus, make_engine

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = find_chromium()
STARTUP_TIMEOUT_SECONDS = 240.0
"""Bound on the stack's start-up and onboarding; generous because CI shares two cores."""

SCENARIO = """
[scenario]
name = "browser"
description = "Betting that lasts some seconds, so the dashboard can show it and pause it."
seed = 3

[house]
funding = 1_000_000_000_000

[[markets]]
market_id = 1
name = "Bout 1: Alvarez vs Brook"
outcomes = ["Alvarez", "Brook", "Draw"]
odds = ["1.80", "2.20", "12.0"]
liability_cap = 100_000_000_000
result = 0

[[markets]]
market_id = 2
name = "Bout 2: Chen vs Duarte"
outcomes = ["Chen", "Duarte"]
odds = ["1.50", "2.75"]
liability_cap = 100_000_000_000
result = 1

[bettors]
count = 4
faucet = 1_000_000_000
deposit = 500_000_000
bets_per_bettor = 25
stake_min = 1_000_000
stake_max = 20_000_000
odds_reads_per_bet = 1
concurrency = 4

[odds_feed]
moves = 20
max_change_bps = 800
"""


@pytest.fixture
def artifacts() -> Path:
    path = Path(os.environ.get("WAGERLAB_BROWSER_ARTIFACTS", ROOT / "runs" / "browser-test"))
    path.mkdir(parents=True, exist_ok=True)
    print(f"browser test screenshots: {path}")
    return path


@pytest.fixture
def run(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """A `wagerlab run` in the background; stopped with SIGINT so that it stops its services."""
    scenario = tmp_path / "browser.toml"
    scenario.write_text(SCENARIO)
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "wagerlab", "run", str(scenario), "--no-progress", "--out", str(run_dir)]
    with open(tmp_path / "wagerlab-run.log", "wb") as log:
        process = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield run_dir, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(description: str, check: object, timeout: float, process: subprocess.Popen[bytes] | None = None) -> object:
    """Call `check` until it returns a true value; fail with `description` after `timeout` seconds."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if process is not None and process.poll() is not None:
            pytest.fail(f"wagerlab run exited with {process.returncode} while waiting for {description}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {description}")
        time.sleep(0.1)


def api_ready(run_dir: Path) -> dict[str, object] | None:
    config_path = run_dir / "platform.json"
    if not config_path.exists():
        return None
    try:
        config = json.loads(config_path.read_text())
        httpx.get(f"http://{config['host']}:{config['api_port']}/api/health", timeout=1).raise_for_status()
    except (ValueError, KeyError, httpx.HTTPError):
        return None
    return config


def bet_count(browser: Browser) -> int | None:
    text = browser.text("bets-total")
    return int(text) if text.isdigit() else None


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (/usr/bin/chromium); .ci/run installs it with apt-get")
def test_dashboard_live_and_pause(run: tuple[Path, subprocess.Popen[bytes]], artifacts: Path, tmp_path: Path) -> None:
    run_dir, process = run
    config = wait_for("the run's api", lambda: api_ready(run_dir), STARTUP_TIMEOUT_SECONDS, process)
    assert isinstance(config, dict)
    assert CHROMIUM is not None
    browser = Browser(CHROMIUM, tmp_path / "chromium-profile")
    try:
        browser.navigate(f"http://{config['host']}:{config['api_port']}/dashboard#token={config['admin_token']}")
        wait_for("the first dashboard update", lambda: browser.evaluate("document.body ? Number(document.body.dataset.updates || 0) : 0") >= 1, 30)
        assert browser.text("connection") == "live"
        assert "token" not in browser.evaluate("window.location.href")
        browser.screenshot(artifacts / "dashboard-loaded.png")

        first = bet_count(browser)
        assert first is not None
        seen = wait_for("the bet count to change", lambda: (bet_count(browser) or 0) > first, STARTUP_TIMEOUT_SECONDS, process)
        assert seen
        assert browser.text("monitors-status") == "ok"
        assert browser.evaluate("document.querySelectorAll('#markets .market').length") == 2
        assert browser.evaluate("document.querySelectorAll('#bets tbody tr').length") >= 1
        browser.screenshot(artifacts / "dashboard-betting.png")

        browser.evaluate("document.getElementById('pause').click()")
        wait_for("the pause to be mined", lambda: browser.text("action-result").startswith("pause: mined in"), 60)
        # The run's bettors give up on a paused platform and the run stops its services, so
        # the page may show "api unreachable" instead of the PAUSED badge: no assert on it.
        deadline = time.monotonic() + 3
        while browser.text("pause-state") != "PAUSED" and time.monotonic() < deadline:
            time.sleep(0.1)
        print(f"pause state on the page after the pause: {browser.text('pause-state')!r}")
        browser.screenshot(artifacts / "dashboard-paused.png")
    finally:
        browser.close()

    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    process.wait(timeout=120)
    assert_no_bets_after_pause(run_dir)


def assert_no_bets_after_pause(run_dir: Path) -> None:
    """Check that no bet was mined after the pause, and that bets sent after it were rejected.

    A bet sent after the pause is rejected either by the api (409 `platform_paused`, logged
    in api.log) or by the contract (`SportsbookEnforcedPause`, stored on its relay).
    """
    engine = make_engine(f"sqlite:///{run_dir / 'platform.db'}")
    with Session(engine) as session:
        pause = session.exec(select(ChainTransaction).where(ChainTransaction.function == "pause")).one()
        bets = session.exec(select(Bet)).all()
        relays = session.exec(
            select(ChainTransaction).where(ChainTransaction.function == "placeBet", col(ChainTransaction.created_at) > pause.updated_at)
        ).all()
    api_rejections = [line for line in (run_dir / "logs" / "api.log").read_text().splitlines() if "POST /api/bets -> 409 platform_paused" in line]

    assert pause.status == TxStatus.MINED
    assert pause.block_number is not None
    assert bets, "no bet was placed before the pause"
    assert max(bet.block_number for bet in bets) < pause.block_number
    for relay in relays:
        assert relay.status == TxStatus.REVERTED, f"bet tx {relay.tx_hash} sent after the pause ended {relay.status}"
        assert "EnforcedPause" in (relay.error or "")
    assert relays or api_rejections, "no bet was sent after the pause was mined, so the pause was not tested"
