"""The load test's arithmetic, options, Locust parsing and HTML report, and one short run.

Only `test_loadtest_places_bets` runs Locust, as a subprocess: imported here, Locust would
patch the ssl module of the whole test process.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from wagerlab.sim.loadtest import (
    LOCUST_ROW_NAME,
    LoadTestError,
    LoadTestOptions,
    _read_locust_stats,
    _result,
    check_options,
    locust_argv,
    percentile,
    run_loadtest,
)
from wagerlab.sim.loadtest.report import comparison_html, line_chart, run_html
from wagerlab.sim.loadtest.traffic import ODDS_ROUTE


def _stats(requests: int, hits: int, misses: int, db_reads: int, staleness: int = 0) -> dict[str, Any]:
    return {
        "hits": hits,
        "misses": misses,
        "db_reads": db_reads,
        "stale_reads": 0,
        "max_staleness_ms": staleness,
        "max_age_ms": 0,
        "requests": {ODDS_ROUTE: requests, "GET /api/stats": 3},
    }


@pytest.mark.parametrize(
    ("times", "fraction", "expected"),
    [
        ({1: 50, 2: 49, 300: 1}, 0.50, 1.0),
        ({1: 50, 2: 49, 300: 1}, 0.99, 2.0),
        ({1: 50, 2: 48, 300: 2}, 0.99, 300.0),
        ({7: 1}, 0.99, 7.0),
        ({}, 0.5, 0.0),
    ],
)
def test_percentile_table(times: dict[int, int], fraction: float, expected: float) -> None:
    assert percentile(times, fraction) == expected


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"strategy": "lru"}, "unknown strategy 'lru'"),
        ({"rate": 0}, "--rate must be a positive finite number of requests per second, got 0"),
        ({"rate": float("nan")}, "--rate must be a positive finite number of requests per second, got nan"),
        ({"rate": float("inf")}, "--rate must be a positive finite number of requests per second, got inf"),
        ({"duration": 2}, "--duration must be at least 5 s, got 2"),
        ({"users": 0}, "--users must be at least 1, got 0"),
        ({"model": "poisson"}, "unknown model 'poisson'"),
        ({"bet_interval": 0}, "--bet-interval must be a positive finite number of seconds, got 0"),
        ({"bet_interval": float("nan")}, "--bet-interval must be a positive finite number of seconds, got nan"),
        ({"bet_interval": float("inf")}, "--bet-interval must be a positive finite number of seconds, got inf"),
        ({"bet_interval": 1e9}, "--bet-interval 1e\\+09 is longer than --duration 30"),
        ({"bet_interval": 30.5}, "--bet-interval 30.5 is longer than --duration 30"),
    ],
)
def test_options_rejected(changes: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"strategy": "ttl", "rate": 833.0, "duration": 30, "out": Path("x")} | changes
    with pytest.raises(LoadTestError, match=message):
        check_options(LoadTestOptions(**fields))


def test_options_accept_all() -> None:
    check_options(LoadTestOptions(strategy="all", rate=833.0, duration=30, out=Path("x")))


def test_options_accept_interval_equal_to_duration() -> None:
    check_options(LoadTestOptions(strategy="ttl", rate=833.0, duration=30, out=Path("x"), bet_interval=30.0))


def test_result_uses_server_deltas() -> None:
    options = LoadTestOptions(strategy="ttl", rate=833.0, duration=20, out=Path("x"))
    before = _stats(requests=10, hits=5, misses=5, db_reads=5)
    after = _stats(requests=16_010, hits=15_905, misses=105, db_reads=105, staleness=1_250)
    locust = {"requests": 16_000.0, "failures": 0.0, "p50_ms": 4.0, "p99_ms": 40.0}

    result = _result("ttl", options, before, after, locust)

    assert result["server_requests"] == 16_000
    assert result["achieved_rate"] == 800.0
    assert result["locust_rate"] == 800.0
    assert result["count_difference_pct"] == 0.0
    assert result["hit_ratio"] == pytest.approx(15_900 / 16_000, abs=1e-4)
    assert result["db_queries"] == 100
    assert result["db_queries_per_minute"] == 300.0
    assert result["max_staleness_ms"] == 1_250
    assert result["options"]["out"] == "x"


def test_result_without_reads_has_no_ratio() -> None:
    options = LoadTestOptions(strategy="none", rate=1.0, duration=10, out=Path("x"))
    quiet = _stats(requests=0, hits=0, misses=0, db_reads=0)

    result = _result("none", options, quiet, quiet, {"requests": 0.0, "failures": 0.0, "p50_ms": 0.0, "p99_ms": 0.0})

    assert result["hit_ratio"] is None
    assert result["count_difference_pct"] == 0.0


def test_locust_json_parsed(tmp_path: Path) -> None:
    entries = [
        {"name": "other", "num_requests": 5, "num_failures": 0, "response_times": {"1": 5}},
        {"name": LOCUST_ROW_NAME, "num_requests": 100, "num_failures": 2, "response_times": {"3": 60, "9": 39, "120": 1}},
    ]
    path = tmp_path / "final.json"
    path.write_text(json.dumps(entries))

    stats = _read_locust_stats(path)

    assert stats == {"requests": 100.0, "failures": 2.0, "p50_ms": 3.0, "p99_ms": 9.0}


def test_locust_json_without_odds_row(tmp_path: Path) -> None:
    path = tmp_path / "final.json"
    path.write_text("[]")

    with pytest.raises(LoadTestError, match="has no entry for /api/markets/\\[id\\]/odds"):
        _read_locust_stats(path)


def test_chart_escapes_and_scales() -> None:
    svg = line_chart("p99 <ms>", {"a&b": [(0.0, 1.0), (10.0, 4.0)]}, "ms")

    assert "p99 &lt;ms&gt;" in svg
    assert "a&amp;b" in svg
    assert "<polyline" in svg
    assert "max 4" in svg


def test_chart_without_samples() -> None:
    assert "no samples" in line_chart("empty", {"a": []}, "ms")


def test_pages_contain_every_strategy() -> None:
    options = LoadTestOptions(strategy="ttl", rate=10.0, duration=10, out=Path("x"))
    rows = []
    for name in ("ttl", "two-tier"):
        before = _stats(requests=0, hits=0, misses=0, db_reads=0)
        after = _stats(requests=100, hits=90, misses=10, db_reads=10, staleness=20)
        rows.append(_result(name, options, before, after, {"requests": 100.0, "failures": 0.0, "p50_ms": 2.0, "p99_ms": 9.0}))
    samples = [(1.0, _stats(10, 5, 5, 5)), (2.0, _stats(30, 20, 10, 10, staleness=30))]

    single = run_html(rows[0], {"locust": [{"time": 100.0, "rps": 10.0, "p50": 2.0, "p99": 9.0}], "server": samples})
    comparison = comparison_html(rows)

    assert single.count("<svg") == 4
    assert "two-tier" in comparison
    assert "max staleness" in comparison


@pytest.mark.parametrize(("workers", "model", "user_class"), [(0, "closed", "ClosedModelUser"), (2, "open", "OpenModelUser")])
def test_locust_argv_options(tmp_path: Path, workers: int, model: str, user_class: str) -> None:
    # Locust is not imported here: it patches the ssl module of the whole test process.
    options = LoadTestOptions(strategy="ttl", rate=833.0, duration=30, out=tmp_path, users=40, workers=workers, model=model)

    argv = locust_argv("http://127.0.0.1:8000", options, tmp_path)

    def value_of(flag: str) -> str | None:
        return argv[argv.index(flag) + 1] if flag in argv else None

    assert argv[1:3] == ["-m", "locust"]
    assert value_of("-f").endswith("loadtests/locustfile.py")  # type: ignore[union-attr]
    assert Path(value_of("-f")).exists()  # type: ignore[arg-type]
    assert value_of("--processes") == (str(workers) if workers else None)
    assert value_of("--users") == "40"
    assert value_of("--run-time") == "30s"
    assert value_of("--host") == "http://127.0.0.1:8000"
    assert "--headless" in argv
    assert argv[-1] == user_class


def test_pages_show_bet_counts() -> None:
    options = LoadTestOptions(strategy="ttl", rate=10.0, duration=10, out=Path("x"))
    quiet = _stats(requests=0, hits=0, misses=0, db_reads=0)
    result = _result("ttl", options, quiet, quiet, {"requests": 0.0, "failures": 0.0, "p50_ms": 0.0, "p99_ms": 0.0})
    result["background"] = {
        "bets_mined": 71,
        "bets_failed": 3,
        "bet_failures": {"reverted": 2, "quote_rejected": 1},
        "db_mismatch": 0,
        "bet_traffic_error": "TimeoutError: <late>",
    }

    page = run_html(result, {"locust": [], "server": []})
    comparison = comparison_html([result])

    assert "<td>71</td>" in page
    assert "bets_failed" in page
    assert "&#x27;reverted&#x27;: 2" in page
    assert "TimeoutError: &lt;late&gt;" in page
    assert "<td>71</td>" in comparison


@pytest.mark.slow
def test_loadtest_places_bets(tmp_path: Path) -> None:
    options = LoadTestOptions(
        strategy="ttl", rate=10.0, duration=5, out=tmp_path, users=2, markets=2, bettors=3, quote_interval=0.5, bet_interval=0.2
    )

    (result,) = run_loadtest(options)
    written = json.loads((tmp_path / "loadtest.json").read_text())
    background = written["background"]
    with sqlite3.connect(tmp_path / "run" / "platform.db") as db:
        stored_bets = db.execute("SELECT count(*) FROM bets").fetchone()[0]

    assert written == result
    assert background["bet_traffic_error"] is None
    assert background["bets_attempted"] >= 2
    assert background["bets_placed"] == background["bets_attempted"]
    assert background["bets_mined"] == background["bets_attempted"]
    assert background["bets_failed"] == 0
    assert background["bets_pending"] == 0
    assert background["bets_applied"] == background["bets_mined"]
    assert background["bets_in_db"] == background["bets_mined"]
    assert background["db_mismatch"] == 0
    assert stored_bets == background["bets_mined"]
    assert background["odds_changes"] >= 1
    assert f"<td>{background['bets_mined']}</td>" in (tmp_path / "loadtest.html").read_text()


def test_cli_bet_interval_option() -> None:
    from wagerlab.cli import build_parser

    default = build_parser().parse_args(["loadtest"])
    chosen = build_parser().parse_args(["loadtest", "--bet-interval", "0.25"])

    assert default.bet_interval == LoadTestOptions(strategy="ttl", rate=1.0, duration=5, out=Path("x")).bet_interval
    assert chosen.bet_interval == 0.25
