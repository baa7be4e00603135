"""loadtest.html: line charts as inline SVG, so the page needs no script or network access."""

from __future__ import annotations

import html
from typing import Any

WIDTH, HEIGHT, MARGIN = 640, 220, 48
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")

Series = dict[str, list[tuple[float, float]]]


def line_chart(title: str, series: Series, y_label: str) -> str:
    """Return an SVG line chart of each named series of (x, y) points, x in seconds."""
    points = [point for values in series.values() for point in values]
    if not points:
        return f"<h3>{html.escape(title)}</h3><p>no samples</p>"
    x_max = max(x for x, _ in points) or 1.0
    y_max = max(y for _, y in points) or 1.0

    def scale(x: float, y: float) -> str:
        left = MARGIN + x / x_max * (WIDTH - 2 * MARGIN)
        top = HEIGHT - MARGIN - y / y_max * (HEIGHT - 2 * MARGIN)
        return f"{left:.1f},{top:.1f}"

    lines = []
    for index, (name, values) in enumerate(series.items()):
        color = COLORS[index % len(COLORS)]
        path = " ".join(scale(x, y) for x, y in values)
        lines.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{path}"/>')
        lines.append(f'<text x="{WIDTH - MARGIN + 4}" y="{MARGIN + 14 * index}" fill="{color}" font-size="11">{html.escape(name)}</text>')
    axes = (
        f'<line x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - MARGIN}" y2="{HEIGHT - MARGIN}" stroke="#444"/>'
        f'<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{HEIGHT - MARGIN}" stroke="#444"/>'
        f'<text x="{MARGIN}" y="{MARGIN - 8}" font-size="11">{html.escape(y_label)} (max {y_max:g})</text>'
        f'<text x="{WIDTH - MARGIN}" y="{HEIGHT - MARGIN + 16}" font-size="11" text-anchor="end">{x_max:.0f} s</text>'
    )
    return f'<h3>{html.escape(title)}</h3><svg width="{WIDTH + 80}" height="{HEIGHT}" role="img">{axes}{"".join(lines)}</svg>'


def _server_series(samples: list[tuple[float, dict[str, Any]]]) -> dict[str, Series]:
    """Turn cumulative counters into per-interval rates and ratios."""
    hit_ratio: list[tuple[float, float]] = []
    db_per_second: list[tuple[float, float]] = []
    staleness: list[tuple[float, float]] = []
    for (t0, first), (t1, second) in zip(samples, samples[1:], strict=False):
        hits, misses = second["hits"] - first["hits"], second["misses"] - first["misses"]
        if hits + misses:
            hit_ratio.append((t1, hits / (hits + misses)))
        db_per_second.append((t1, (second["db_reads"] - first["db_reads"]) / max(t1 - t0, 1e-6)))
        staleness.append((t1, float(second["max_staleness_ms"])))
    return {"hit_ratio": {"hit ratio": hit_ratio}, "db": {"DB queries/s": db_per_second}, "staleness": {"max staleness ms": staleness}}


def _page(title: str, body: str) -> str:
    style = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style></head><body>{body}</body></html>\n"


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(column)}</th>" for column in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(row.get(column)))}</td>" for column in columns) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


SUMMARY_COLUMNS = [
    "strategy", "model", "target_rate", "achieved_rate", "locust_rate", "count_difference_pct", "p50_ms", "p99_ms",
    "hit_ratio", "db_queries", "db_queries_per_minute", "max_staleness_ms", "stale_reads",
]  # fmt: skip


BACKGROUND_COLUMNS = [
    "strategy", "odds_changes", "quotes", "errors", "bets_attempted", "bets_placed", "bets_mined", "bets_failed",
    "bets_pending", "bets_applied", "bets_in_db", "db_mismatch",
]  # fmt: skip
"""The background traffic's counts; `bets_applied` is the bets monitor's count of applied BetPlaced events."""


def _background_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"strategy": result["strategy"], **result.get("background", {})} for result in results]


def _background_table(results: list[dict[str, Any]]) -> str:
    rows = _background_rows(results)
    failures = "".join(
        f"<li>{html.escape(row['strategy'])}: {html.escape(str(row.get('bet_failures') or 'none'))}"
        + (f"; bet traffic error: {html.escape(row['bet_traffic_error'])}" if row.get("bet_traffic_error") else "")
        + "</li>"
        for row in rows
    )
    return (
        "<h2>Background traffic: odds changes, quotes and bets on chain</h2>"
        + _table(rows, BACKGROUND_COLUMNS)
        + f"<p>Failed bets by cause:</p><ul>{failures}</ul>"
    )


def run_html(result: dict[str, Any], series: dict[str, Any]) -> str:
    """Return the page of one strategy's run: its numbers, its background traffic and four charts over time."""
    locust = series["locust"]
    start = locust[0]["time"] if locust else 0.0
    latency = {
        "p50": [(row["time"] - start, row["p50"]) for row in locust],
        "p99": [(row["time"] - start, row["p99"]) for row in locust],
    }
    server = _server_series(series["server"])
    body = (
        f"<h1>Load test: {html.escape(result['strategy'])}</h1>"
        + _table([result], SUMMARY_COLUMNS)
        + _background_table([result])
        + line_chart("Latency percentiles (Locust, cumulative)", latency, "ms")
        + line_chart("Hit ratio per second (server)", server["hit_ratio"], "ratio")
        + line_chart("DB queries per second (server)", server["db"], "queries/s")
        + line_chart("Max staleness so far (server)", server["staleness"], "ms")
    )
    return _page(f"wagerlab load test {result['strategy']}", body)


def comparison_html(results: list[dict[str, Any]]) -> str:
    """Return the page comparing strategies: speed and staleness side by side."""
    bars = {
        "p99 latency (ms)": [(index + 1, float(row["p99_ms"])) for index, row in enumerate(results)],
        "max staleness (s)": [(index + 1, row["max_staleness_ms"] / 1000) for index, row in enumerate(results)],
    }
    names = ", ".join(f"{index + 1} = {row['strategy']}" for index, row in enumerate(results))
    body = (
        "<h1>Load test: strategies compared</h1>"
        + _table(results, SUMMARY_COLUMNS)
        + _background_table(results)
        + line_chart(f"p99 latency and max staleness by strategy ({names})", bars, "value")
        + "<p>Each strategy's own page, with charts over time, is in its folder.</p>"
    )
    return _page("wagerlab load test comparison", body)
