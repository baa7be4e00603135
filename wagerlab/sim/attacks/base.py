"""The parts every attack actor shares: its context, its result, option checks and alert polling."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from web3 import Web3

from wagerlab.platform.config import PlatformConfig
from wagerlab.platform.db import Alert
from wagerlab.sim.actors import World

logger = logging.getLogger(__name__)

ALERT_TIMEOUT_SECONDS = 30.0


class AttackOptionsError(Exception):
    """An `[[attacks]]` key of a scenario is unknown or has an invalid value."""

    def __init__(self, key: str, expected: str, got: object) -> None:
        super().__init__(f"attack option {key!r}: expected {expected}, got {got!r}")
        self.key = key
        self.expected = expected
        self.got = got


class AttackError(Exception):
    """An attack could not be carried out because the platform responded in an unexpected way."""


@dataclass
class AttackContext:
    world: World
    config: PlatformConfig
    engine: Engine
    w3: Web3
    bettor_logins: list[tuple[str, str]] = field(default_factory=list)
    """Usernames and passwords of the run's bettors, for attacks that need a real account."""


@dataclass
class AttackResult:
    """The outcome of one attack: whether it was detected (the expected alerts exist) and contained."""

    kind: str
    at: str
    detected: bool
    contained: bool
    detail: str
    alerts: list[str] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.detected and self.contained

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "at": self.at,
            "ok": self.ok,
            "detected": self.detected,
            "contained": self.contained,
            "alerts": self.alerts,
            "checks": self.checks,
            "detail": self.detail,
        }


class Attack:
    """One kind of attack. Subclasses set `kind` and `options` and implement `run`."""

    kind: ClassVar[str]
    options: ClassVar[dict[str, int]] = {}
    """Option names and their defaults; every option is a positive integer."""

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        for name, value in options.items():
            if name not in cls.options:
                raise AttackOptionsError(name, f"one of {sorted(cls.options)}", name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise AttackOptionsError(name, "a positive integer", value)

    @classmethod
    def resolve(cls, options: dict[str, Any]) -> dict[str, int]:
        return {**cls.options, **options}

    async def run(self, context: AttackContext, options: dict[str, int], at: str) -> AttackResult:
        raise NotImplementedError


def attacker_client(source_ip: str) -> httpx.AsyncClient:
    """Return an HTTP client whose connections come from `source_ip`, another loopback address.

    Linux routes all of 127.0.0.0/8 to the loopback interface, so an attacker can have an
    address of its own while the platform still listens on 127.0.0.1 only.
    """
    transport = httpx.AsyncHTTPTransport(local_address=source_ip, retries=0)
    return httpx.AsyncClient(transport=transport, timeout=30)


def last_alert_id(engine: Engine) -> int:
    with Session(engine) as session:
        row = session.exec(select(Alert).order_by(Alert.id.desc()).limit(1)).first()  # type: ignore[union-attr]
        return row.id if row is not None and row.id is not None else 0


def alerts_since(engine: Engine, after_id: int) -> list[Alert]:
    with Session(engine) as session:
        return list(session.exec(select(Alert).where(Alert.id > after_id).order_by(Alert.id)).all())


async def wait_for_alerts(engine: Engine, after_id: int, rules: set[str], timeout: float = ALERT_TIMEOUT_SECONDS) -> list[Alert]:
    """Wait until an alert of every rule in `rules` has been stored after `after_id`; return the new alerts."""
    deadline = time.monotonic() + timeout
    while True:
        alerts = await asyncio.to_thread(alerts_since, engine, after_id)
        if rules <= {alert.rule for alert in alerts} or time.monotonic() > deadline:
            return alerts
        await asyncio.sleep(0.2)
