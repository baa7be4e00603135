"""A gateway in front of a small stand-in api, both in process over httpx's ASGI transport."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fakeredis
import httpx
from eth_utils import keccak
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api_fixtures import ADMIN_TOKEN, make_config
from wagerlab.platform.db import Alert, create_tables, make_engine
from wagerlab.platform.gateway import build_gateway_app

PASSWORD = "right password"


@dataclass
class StandInApi:
    """Serves login, markets and bets like the api, and records the requests that reached it."""

    login_delay: float = 0.0
    down: bool = False
    fail_next: int = 0
    """Number of bet submissions that get 503 before the stand-in serves them again."""
    logins: int = 0
    bets: list[str] = field(default_factory=list)
    bet_authorizations: list[str | None] = field(default_factory=list)
    """The Authorization header of every bet submission the stand-in served."""
    seen_forwarded_for: list[str | None] = field(default_factory=list)

    def app(self) -> Starlette:
        async def login(request: Request) -> JSONResponse:
            body = await request.json()
            if not isinstance(body.get("password"), str):
                return JSONResponse({"error": "invalid_field", "detail": "password is missing", "field": "password"}, 422)
            self.logins += 1
            await asyncio.sleep(self.login_delay)
            if body.get("password") != PASSWORD:
                return JSONResponse({"error": "unauthorized", "detail": "invalid username or password", "field": None}, 401)
            return JSONResponse({"token": f"token-of-{body['username']}", "expires_in": 60})

        async def markets(request: Request) -> JSONResponse:
            self.seen_forwarded_for.append(request.headers.get("x-forwarded-for"))
            return JSONResponse([])

        async def bets(request: Request) -> JSONResponse:
            if self.fail_next > 0:
                self.fail_next -= 1
                return JSONResponse({"error": "service_unavailable", "detail": "chainapi down", "field": None}, 503)
            if self.down:
                return JSONResponse({"error": "service_unavailable", "detail": "chainapi down", "field": None}, 503)
            self.bet_authorizations.append(request.headers.get("authorization"))
            raw = (await request.json())["raw_transaction"]
            tx_hash = "0x" + keccak(bytes.fromhex(raw[2:])).hex()
            if tx_hash not in self.bets:
                self.bets.append(tx_hash)
            return JSONResponse({"tx_id": str(self.bets.index(tx_hash) + 1), "tx_hash": tx_hash}, 202)

        return Starlette(
            routes=[
                Route("/api/login", login, methods=["POST"]),
                Route("/api/markets", markets, methods=["GET"]),
                Route("/api/bets", bets, methods=["POST"]),
            ]
        )


@dataclass
class GatewayHarness:
    app: Starlette
    upstream: StandInApi
    engine: Engine
    log_path: Path

    def client(self, ip: str = "198.51.100.7") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(ip, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://gateway")

    def alerts(self, rule: str | None = None) -> list[Alert]:
        with Session(self.engine) as session:
            rows = session.exec(select(Alert).order_by(Alert.id)).all()
            return [row for row in rows if rule is None or row.rule == rule]


def make_gateway(tmp_path: Path, *, upstream: StandInApi | None = None, redis_client: Any = None, **config: Any) -> GatewayHarness:
    upstream = upstream or StandInApi()
    db_url = f"sqlite:///{tmp_path / 'platform.db'}"
    engine = make_engine(db_url)
    create_tables(engine)
    log_path = tmp_path / "forensics.jsonl"
    platform = make_config(db_url, forensic_log_path=str(log_path), **config)
    app = build_gateway_app(
        platform,
        engine=engine,
        redis_client=redis_client or fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer()),
        transport=httpx.ASGITransport(app=upstream.app()),
        contract_monitor=False,
    )
    return GatewayHarness(app=app, upstream=upstream, engine=engine, log_path=log_path)


ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
