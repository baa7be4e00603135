"""Monitors that mirror Sportsbook events into the database exactly once.

`run_monitors(config)` runs the deposits, bets and settlement monitors in one process
and serves `GET /health`; `LogMonitor` is the base for each monitor.
"""

from wagerlab.platform.monitors.base import ApplyOutcome, EventHandler, LogMonitor
from wagerlab.platform.monitors.bets import BetsMonitor
from wagerlab.platform.monitors.deposits import DepositsMonitor
from wagerlab.platform.monitors.settlement import SettlementMonitor
from wagerlab.platform.monitors.supervisor import Supervisor, build_monitors, run_monitors, serve_monitors

__all__ = [
    "ApplyOutcome",
    "BetsMonitor",
    "DepositsMonitor",
    "EventHandler",
    "LogMonitor",
    "SettlementMonitor",
    "Supervisor",
    "build_monitors",
    "run_monitors",
    "serve_monitors",
]
