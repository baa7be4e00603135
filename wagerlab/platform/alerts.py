"""Raising alerts: each one is logged, stored in the `alerts` table and optionally posted to a webhook.

A process that should post its alerts calls `set_webhook_url` once at start (the monitors
process does, with `alert_webhook_url` from the platform config). A failed post (a
transport error or a status other than 2xx) is logged and does not raise, because the
alert is already stored.
"""

from __future__ import annotations

import logging

import httpx
from sqlalchemy.engine import Engine

from wagerlab.platform.db import Alert, AlertSeverity, write_session

logger = logging.getLogger(__name__)

_LOG_LEVELS = {AlertSeverity.INFO: logging.INFO, AlertSeverity.WARNING: logging.WARNING, AlertSeverity.CRITICAL: logging.ERROR}


WEBHOOK_TIMEOUT_SECONDS = 5.0
_webhook_url: str | None = None


def set_webhook_url(url: str | None) -> None:
    """Post every alert this process raises to `url` as JSON; None stops posting."""
    global _webhook_url
    _webhook_url = url


def raise_alert(engine: Engine, rule: str, severity: AlertSeverity, source: str, detail: str) -> Alert:
    """Store an alert, log it at a level that matches its severity, and post it to the webhook if one is set."""
    logger.log(_LOG_LEVELS[severity], "alert %s (%s) from %s: %s", rule, severity.value, source, detail)
    with write_session(engine) as session:
        alert = Alert(rule=rule, severity=severity, source=source, detail=detail)
        session.add(alert)
    if _webhook_url is not None:
        post_alert(_webhook_url, alert)
    return alert


def post_alert(url: str, alert: Alert) -> bool:
    """POST one alert as JSON to `url`; return whether the receiver responded with a 2xx status."""
    body = {
        "id": alert.id,
        "rule": alert.rule,
        "severity": alert.severity.value,
        "source": alert.source,
        "detail": alert.detail,
        "created_at": alert.created_at,
    }
    try:
        response = httpx.post(url, json=body, timeout=WEBHOOK_TIMEOUT_SECONDS)
    except httpx.HTTPError as err:
        logger.warning("posting alert %s (id %s) to the webhook %s failed: %s", alert.rule, alert.id, url, err)
        return False
    if not response.is_success:
        logger.warning("the webhook %s responded to alert %s (id %s) with HTTP %s", url, alert.rule, alert.id, response.status_code)
        return False
    return True
