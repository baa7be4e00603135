"""`POST /api/register` and `POST /api/login`."""

from __future__ import annotations

import logging
import re

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from wagerlab.platform.api.context import context
from wagerlab.platform.api.validation import read_json_object, require_address, require_pattern, require_str
from wagerlab.platform.auth import issue_token
from wagerlab.platform.db import User, read_session, write_session
from wagerlab.platform.errors import AuthenticationError, ConflictError

logger = logging.getLogger(__name__)

USERNAME = re.compile(r"[A-Za-z0-9_.-]{3,64}")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
"""Bounds the argon2 work one request can cause."""

_DUMMY_PASSWORD = "wagerlab-dummy-password"


def _insert_user(engine: Engine, username: str, password_hash: str, address: str) -> User:
    with write_session(engine) as session:
        if session.exec(select(User).where(User.username == username)).first() is not None:
            raise ConflictError(f"username {username!r} is already registered", field="username")
        if session.exec(select(User).where(User.address == address)).first() is not None:
            raise ConflictError(f"address {address} is already registered to another user", field="address")
        user = User(username=username, password_hash=password_hash, address=address)
        session.add(user)
        session.flush()
        return User(**user.model_dump())


async def register(request: Request) -> JSONResponse:
    ctx = context(request)
    body = await read_json_object(request)
    username = require_pattern(
        body, "username", USERNAME, explanation="3 to 64 characters of letters, digits, '_', '.' or '-'"
    )
    password = require_str(body, "password", min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)
    address = require_address(body, "address")

    password_hash = await ctx.passwords.hash(password)
    try:
        user = await run_in_threadpool(_insert_user, ctx.engine, username, password_hash, address)
    except IntegrityError as err:
        raise ConflictError(f"username {username!r} or address {address} is already registered") from err

    logger.info("registered user %s (%s) with address %s", user.id, username, address)
    return JSONResponse({"user_id": user.id, "username": username, "address": address}, status_code=201)


def _user_by_name(engine: Engine, username: str) -> User | None:
    with read_session(engine) as session:
        user = session.exec(select(User).where(User.username == username)).first()
        return None if user is None else User(**user.model_dump())


async def login(request: Request) -> JSONResponse:
    ctx = context(request)
    body = await read_json_object(request)
    username = require_str(body, "username", max_length=64)
    password = require_str(body, "password", max_length=MAX_PASSWORD_LENGTH)

    user = await run_in_threadpool(_user_by_name, ctx.engine, username)
    if user is None:
        # Hash anyway, so the response time does not tell which usernames exist.
        await ctx.passwords.hash(_DUMMY_PASSWORD)
        raise AuthenticationError("invalid username or password")
    if not await ctx.passwords.verify(user.password_hash, password):
        logger.info("failed login for user %s", user.id)
        raise AuthenticationError("invalid username or password")

    assert user.id is not None
    token = await issue_token(ctx.cache, ctx.engine, user.id)
    return JSONResponse({"token": token, "expires_in": ctx.config.token_ttl_seconds})
