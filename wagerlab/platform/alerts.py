"""Raising alerts: each one is logged and stored in the `alerts` table."""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from wagerlab.platform.db import Alert, AlertSeverity, write_session

logger = logging.getLogger(__name__)

_LOG_LEVELS = {AlertSeverity.INFO: logging.INFO, AlertSeverity.WARNING: logging.WARNING, AlertSeverity.CRITICAL: logging.ERROR}


def raise_alert(engine: Engine, rule: str, severity: AlertSeverity, source: str, detail: str) -> Alert:
    """Store an alert and log it at a level that matches its severity."""
    logger.log(_LOG_LEVELS[severity], "alert %s (%s) from %s: %s", rule, severity.value, source, detail)
    with write_session(engine) as session:
        alert = Alert(rule=rule, severity=severity, source=source, detail=detail)
        session.add(alert)
    return alert
