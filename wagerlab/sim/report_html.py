"""RUN_DIR/report.html: the run's report with plots, as one self-contained page.

The plots are inline SVG drawn here, so the page opens offline with no script and no
external file. Their data comes from the run's database: bets and monitor lag from
`chain_events` (with `applied_at`), odds from the `quotes` the odds signer issued, alerts
from `alerts`, and the verdicts from report.json.
"""

from __future__ import annotations

import html
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from wagerlab.odds import ODDS_SCALE
from wagerlab.platform.db import Alert, ChainEvent, ChainTransaction, Quote

logger = logging.getLogger(__name__)

WIDTH, HEIGHT = 760, 240
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 16, 12, 36
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
SEVERITY_COLORS = {"info": "#7f7f7f", "warning": "#ff7f0e", "critical": "#d62728"}


@dataclass
class Series:
    """One line (or set of points) of a chart; x in seconds since the run started."""

    name: str
    points: list[tuple[float, float]]
    step: bool = False
    dots: bool = False


@dataclass
class Marker:
    """A vertical line across a chart at `x`, such as an alert."""

    x: float
    label: str
    color: str


@dataclass
class RunData:
    """The series of the plots, read from the run's database."""

    bets: list[tuple[float, int]] = field(default_factory=list)
    """(applied_at in ms, stake) of each `BetPlaced` event."""
    quotes: list[tuple[float, int, int, int]] = field(default_factory=list)
    """(created_at in ms, market id, outcome, odds) of each issued quote."""
    lag: list[tuple[float, str, float]] = field(default_factory=list)
    """(applied_at in ms, monitor, ms from chainapi accepting the transaction to the event applied)."""
    alerts: list[tuple[float, str, str, str]] = field(default_factory=list)
    """(created_at in ms, rule, severity, detail)."""


def read_run_data(engine: Engine) -> RunData:
    """Read the series of the plots; a table that cannot be read leaves its plots empty."""
    data = RunData()
    try:
        with Session(engine) as session:
            _read_events(session, data)
            for quote in session.exec(select(Quote).order_by(Quote.created_at)):
                data.quotes.append((quote.created_at, quote.market_id, quote.outcome, quote.odds))
            for alert in session.exec(select(Alert).order_by(Alert.created_at)):
                data.alerts.append((alert.created_at, alert.rule, alert.severity.value, alert.detail))
    except SQLAlchemyError as err:
        logger.error("report.html: reading the run's database failed; plots stay empty: %s", err)
    return data


def _read_events(session: Session, data: RunData) -> None:
    accepted = {tx_hash: created for tx_hash, created in session.exec(select(ChainTransaction.tx_hash, ChainTransaction.created_at)) if tx_hash}
    for event in session.exec(select(ChainEvent).order_by(ChainEvent.applied_at)):
        if event.event == "BetPlaced":
            data.bets.append((event.applied_at, int(event.args.get("stake", 0))))
        if event.tx_hash in accepted:
            data.lag.append((event.applied_at, event.monitor, event.applied_at - accepted[event.tx_hash]))


def write_report_html(run_dir: Path, report: dict[str, Any], engine: Engine | None) -> Path:
    """Write RUN_DIR/report.html from report.json's content and the run's database, if any."""
    data = read_run_data(engine) if engine is not None else RunData()
    path = run_dir / "report.html"
    partial = path.with_suffix(".html.partial")
    partial.write_text(render_report(report, data), encoding="utf-8")
    os.replace(partial, path)
    return path


# -- page -- #


def render_report(report: dict[str, Any], data: RunData) -> str:
    start_ms = _start_ms(report, data)
    markers = [Marker((at - start_ms) / 1000, rule, SEVERITY_COLORS.get(severity, "#7f7f7f")) for at, rule, severity, _ in data.alerts]
    verdict = "every invariant held" if report.get("ok") else "FAILED"
    sections = [
        f"<h1>{_e(report.get('scenario', '?'))} (seed {_e(report.get('seed', '?'))}): {verdict}</h1>",
        f"<p>{_e(report.get('started_at', ''))} to {_e(report.get('finished_at', ''))}, "
        f"{_e(report.get('duration_seconds', '?'))} s; trace digest <code>{_e(report.get('trace_digest'))}</code></p>",
        _invariants_table(report.get("invariants", [])),
        "<h2>Bets over time</h2>",
        _bets_chart(data, start_ms, markers),
        "<h2>Quoted odds over time</h2>",
        *_odds_charts(data, start_ms),
        "<h2>Monitor lag</h2>",
        "<p>Time from chainapi accepting a transaction to a monitor applying its event, per event. "
        "Events of transactions sent outside chainapi (deposits, oracle reports) are not shown.</p>",
        _lag_chart(data, start_ms, markers),
        "<h2>Alerts</h2>",
        _alerts_table(data, start_ms),
        _counts_table(report.get("counts", {})),
        _list_section("Faults injected", [_fault_line(fault) for fault in report.get("faults", [])]),
        _list_section("Attacks", [f"{attack.get('name', attack)}: {'ok' if attack.get('ok') else 'FAILED'}" for attack in report.get("attacks", [])]),
        _list_section("Errors", report.get("errors", [])),
    ]
    return PAGE.format(title=_e(f"wagerlab report: {report.get('scenario', '?')}"), body="\n".join(sections))


def _fault_line(fault: dict[str, Any]) -> str:
    """Describe one injected fault; reports written before `exercised` existed show no verdict."""
    exercised = {True: " (exercised)", False: " (not exercised)"}.get(fault.get("exercised"), "")
    return f"{fault.get('kind')} at {fault.get('at')}{exercised}: {fault.get('detail')}"


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; max-width: 820px; color: #222; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }}
.ok {{ color: #2ca02c; font-weight: bold; }} .failed {{ color: #d62728; font-weight: bold; }}
svg {{ background: #fafafa; border: 1px solid #ddd; }} svg text {{ font-size: 11px; }}
</style></head><body>
{body}
</body></html>
"""


def _start_ms(report: dict[str, Any], data: RunData) -> float:
    started = report.get("started_at")
    if isinstance(started, str):
        try:
            return datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp() * 1000
        except ValueError:
            logger.warning("report.html: started_at %r is not ISO 8601; the time axis starts at the first point", started)
    times = [point[0] for point in (*data.bets, *data.quotes, *data.lag, *data.alerts)]
    return min(times, default=0.0)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _invariants_table(invariants: list[dict[str, Any]]) -> str:
    rows = [
        f"<tr><td>{_e(item['name'])}</td><td class=\"{'ok' if item['ok'] else 'failed'}\">{'held' if item['ok'] else 'FAILED'}</td>"
        f"<td>{_e(item.get('detail', ''))}</td></tr>"
        for item in invariants
    ]
    return "<h2>Invariants</h2><table><tr><th>invariant</th><th>result</th><th>detail</th></tr>" + "".join(rows) + "</table>"


def _counts_table(counts: dict[str, Any]) -> str:
    rows = "".join(f"<tr><td>{_e(name)}</td><td>{_e(value)}</td></tr>" for name, value in counts.items())
    return f"<h2>Counts</h2><table>{rows}</table>"


def _list_section(title: str, items: Iterable[str]) -> str:
    entries = "".join(f"<li>{_e(item)}</li>" for item in items)
    return f"<h2>{_e(title)}</h2>" + (f"<ul>{entries}</ul>" if entries else "<p>none</p>")


def _alerts_table(data: RunData, start_ms: float) -> str:
    if not data.alerts:
        return "<p>no alerts</p>"
    rows = "".join(
        f"<tr><td>{(at - start_ms) / 1000:.1f} s</td><td>{_e(rule)}</td><td>{_e(severity)}</td><td>{_e(detail)}</td></tr>"
        for at, rule, severity, detail in data.alerts
    )
    return f"<table><tr><th>time</th><th>rule</th><th>severity</th><th>detail</th></tr>{rows}</table>"


# -- charts -- #


def _bets_chart(data: RunData, start_ms: float, markers: list[Marker]) -> str:
    count = [((at - start_ms) / 1000, float(index + 1)) for index, (at, _) in enumerate(data.bets)]
    return svg_chart([Series("bets placed (cumulative)", count, step=True)], y_label="bets", markers=markers)


def _odds_charts(data: RunData, start_ms: float) -> list[str]:
    by_market: dict[int, dict[int, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for at, market_id, outcome, odds in data.quotes:
        by_market[market_id][outcome].append(((at - start_ms) / 1000, odds / ODDS_SCALE))
    if not by_market:
        return ["<p>no quotes were issued</p>"]
    charts = []
    for market_id in sorted(by_market):
        series = [Series(f"outcome {outcome}", points, step=True) for outcome, points in sorted(by_market[market_id].items())]
        charts.append(f"<h3>market {market_id}</h3>" + svg_chart(series, y_label="decimal odds", zero_based=False))
    return charts


def _lag_chart(data: RunData, start_ms: float, markers: list[Marker]) -> str:
    by_monitor: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for at, monitor, lag_ms in data.lag:
        by_monitor[monitor].append(((at - start_ms) / 1000, lag_ms))
    series = [Series(monitor, points, dots=True) for monitor, points in sorted(by_monitor.items())]
    return svg_chart(series, y_label="ms", markers=markers)


def svg_chart(series: Sequence[Series], *, y_label: str, markers: Sequence[Marker] = (), zero_based: bool = True) -> str:
    """Return an inline SVG chart of `series` against seconds, with a legend and `markers`.

    The x axis spans the data and the markers, not the whole run, because the stack's
    start-up takes a large part of a short run.
    """
    points = [point for line in series for point in line.points]
    if not points:
        return "<p>no data</p>"
    xs = [x for x, _ in points] + [marker.x for marker in markers]
    x_min, x_max = float(int(min(xs))), max(xs)
    x_max = x_max if x_max > x_min else x_min + 1.0
    ys = [y for _, y in points]
    y_min, y_max = (min(0.0, min(ys)) if zero_based else min(ys) * 0.95), max(ys) * 1.05
    y_max = y_max if y_max > y_min else y_min + 1.0
    scale = _Scale(x_min, x_max, y_min, y_max)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">']
    parts += _axes(scale, y_label)
    for marker in markers:
        x = scale.x(marker.x)
        parts.append(f'<line x1="{x:.1f}" y1="{MARGIN_TOP}" x2="{x:.1f}" y2="{HEIGHT - MARGIN_BOTTOM}" stroke="{marker.color}" stroke-dasharray="4 3"><title>{_e(marker.label)}</title></line>')
    for index, line in enumerate(series):
        parts += _draw_series(line, scale, COLORS[index % len(COLORS)])
    parts += _legend(series)
    parts.append("</svg>")
    return "".join(parts)


@dataclass
class _Scale:
    x_min: float
    x_max: float
    y_min: float
    y_max: float

    def x(self, value: float) -> float:
        return MARGIN_LEFT + (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) * (value - self.x_min) / (self.x_max - self.x_min)

    def y(self, value: float) -> float:
        height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
        return MARGIN_TOP + height * (1 - (value - self.y_min) / (self.y_max - self.y_min))


def _axes(scale: _Scale, y_label: str) -> list[str]:
    bottom, right = HEIGHT - MARGIN_BOTTOM, WIDTH - MARGIN_RIGHT
    parts = [
        f'<line x1="{MARGIN_LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#444"/>',
        f'<line x1="{MARGIN_LEFT}" y1="{MARGIN_TOP}" x2="{MARGIN_LEFT}" y2="{bottom}" stroke="#444"/>',
        f'<text x="{right}" y="{HEIGHT - 4}" text-anchor="end">seconds since the run started</text>',
        f'<text x="12" y="{MARGIN_TOP + (HEIGHT - MARGIN_TOP - MARGIN_BOTTOM) / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {MARGIN_TOP + (HEIGHT - MARGIN_TOP - MARGIN_BOTTOM) / 2:.0f})">{_e(y_label)}</text>',
    ]
    for tick in range(5):
        x_value = scale.x_min + (scale.x_max - scale.x_min) * tick / 4
        y_value = scale.y_min + (scale.y_max - scale.y_min) * tick / 4
        parts.append(f'<text x="{scale.x(x_value):.1f}" y="{bottom + 14}" text-anchor="middle">{x_value:.1f}</text>')
        parts.append(f'<text x="{MARGIN_LEFT - 4}" y="{scale.y(y_value) + 4:.1f}" text-anchor="end">{_number(y_value)}</text>')
        parts.append(f'<line x1="{MARGIN_LEFT}" y1="{scale.y(y_value):.1f}" x2="{right}" y2="{scale.y(y_value):.1f}" stroke="#e4e4e4"/>')
    return parts


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}".rstrip("0").rstrip(".")


def _draw_series(line: Series, scale: _Scale, color: str) -> list[str]:
    if line.dots:
        return [f'<circle cx="{scale.x(x):.1f}" cy="{scale.y(y):.1f}" r="2.5" fill="{color}" fill-opacity="0.7"/>' for x, y in line.points]
    coordinates: list[str] = []
    previous_y: float | None = None
    for x, y in line.points:
        if line.step and previous_y is not None:
            coordinates.append(f"{scale.x(x):.1f},{scale.y(previous_y):.1f}")
        coordinates.append(f"{scale.x(x):.1f},{scale.y(y):.1f}")
        previous_y = y
    return [f'<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{" ".join(coordinates)}"/>']


def _legend(series: Sequence[Series]) -> list[str]:
    parts = []
    for index, line in enumerate(series):
        y = MARGIN_TOP + 4 + 14 * index
        color = COLORS[index % len(COLORS)]
        right = WIDTH - MARGIN_RIGHT - 8
        parts.append(f'<rect x="{right - 10}" y="{y}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{right - 14}" y="{y + 9}" text-anchor="end">{_e(line.name)}</text>')
    return parts
