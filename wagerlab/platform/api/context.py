"""What every api handler needs, kept on `app.state.api`, and the lookup of the caller."""

from __future__ import annotations

from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from wagerlab.platform.api.chainapi_client import ChainapiClient
from wagerlab.platform.api.pause import NeverPaused, PauseState
from wagerlab.platform.auth import Passwords, authenticated_user_id, check_admin
from wagerlab.platform.cache import PlatformCache
from wagerlab.platform.config import PlatformConfig
from wagerlab.platform.db import User, read_session
from wagerlab.platform.errors import AuthenticationError
from wagerlab.platform.quotes import Clock


@dataclass
class ApiContext:
    config: PlatformConfig
    engine: Engine
    cache: PlatformCache
    chainapi: ChainapiClient
    passwords: Passwords
    odds_signer: LocalAccount
    clock: Clock
    """Time for quote expiry and market closing: the chain's, except in tests without a node."""
    pause: PauseState = field(default_factory=NeverPaused)
    """Whether the Sportsbook is paused: read from the chain, except in tests without a node."""


def context(request: Request) -> ApiContext:
    return request.app.state.api


def _load_user(engine: Engine, user_id: int) -> User | None:
    with read_session(engine) as session:
        user = session.get(User, user_id)
        return None if user is None else User(**user.model_dump())


async def current_user(request: Request) -> User:
    """Return the user of the request's bearer token, 401 when the token is not valid."""
    ctx = context(request)
    user_id = await authenticated_user_id(ctx.cache, ctx.engine, request)
    user = await run_in_threadpool(_load_user, ctx.engine, user_id)
    if user is None:
        raise AuthenticationError(f"the token's user {user_id} no longer exists: register and log in again")
    return user


def require_admin(request: Request) -> None:
    check_admin(context(request).config.admin_token, request)
