"""Errors of the monitors that mirror Sportsbook logs into the database."""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every error a monitor raises."""


class EventDecodeError(MonitorError):
    """A log does not match the ABI of the event its first topic names."""


class UnknownEventError(MonitorError):
    """A log's first topic is not one of the events a monitor handles."""


class LedgerImbalanceError(MonitorError):
    """The ledger legs of one event do not sum to zero (a bug in a handler)."""


class DependencyNotReadyError(MonitorError):
    """An event depends on state another monitor has not written yet; retry it later."""


class SubscriptionClosedError(MonitorError):
    """The WebSocket log subscription ended, so the monitor must reconnect and backfill."""


class HealthServerError(MonitorError):
    """The health server cannot listen on its configured address."""
