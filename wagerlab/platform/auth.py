"""Passwords (argon2id), bearer tokens and the admin token of the REST API.

A token is 32 random bytes in urlsafe base64. The cache stores only its SHA-256 digest,
mapped to the user id, for `token_ttl_seconds`. The `auth_tokens` table stores the same
digest and expiry, and is read only while Redis is unreachable. Tokens and passwords are
never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from wagerlab.platform.cache import CacheUnavailableError, PlatformCache
from wagerlab.platform.db import AuthToken, now_ms, read_session, write_session
from wagerlab.platform.errors import AuthenticationError

logger = logging.getLogger(__name__)

TOKEN_BYTES = 32


class Passwords:
    """Argon2id hashing, run in a worker thread because one hash takes tens of milliseconds."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()

    async def hash(self, password: str) -> str:
        return await run_in_threadpool(self.hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await run_in_threadpool(self._verify, password_hash, password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except VerificationError:
            return False
        except InvalidHashError:
            logger.error("stored password hash is not an argon2 hash; the login is rejected")
            return False


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(cache: PlatformCache, engine: Engine, user_id: int) -> str:
    """Create a token for `user_id`, store its digest in the database and the cache; return the token itself."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    digest = token_digest(token)
    expires_at = now_ms() + cache.token_ttl_seconds * 1000
    await run_in_threadpool(_store_token_row, engine, digest, user_id, expires_at)
    await cache.store_token(digest, user_id)
    logger.info("issued a token for user %s", user_id)
    return token


def _store_token_row(engine: Engine, digest: str, user_id: int, expires_at: int) -> None:
    with write_session(engine) as session:
        # Expired rows are deleted here, so after each login the table contains only unexpired tokens.
        session.execute(delete(AuthToken).where(AuthToken.expires_at < now_ms()))
        session.add(AuthToken(digest=digest, user_id=user_id, expires_at=expires_at))


def _user_for_token_row(engine: Engine, digest: str) -> int | None:
    with read_session(engine) as session:
        row = session.get(AuthToken, digest)
    if row is None or row.expires_at <= now_ms():
        return None
    return row.user_id


def bearer_token(request: Request) -> str:
    """Return the token of an `Authorization: Bearer TOKEN` header."""
    header = request.headers.get("authorization")
    if header is None:
        raise AuthenticationError("missing Authorization header: send `Authorization: Bearer TOKEN` from /api/login")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("Authorization header must be `Bearer TOKEN`")
    return token.strip()


async def authenticated_user_id(cache: PlatformCache, engine: Engine, request: Request) -> int:
    """Return the user id of the request's bearer token, 401 when unknown or expired.

    While Redis is unreachable, a token this process has not seen is read from the database.
    """
    digest = token_digest(bearer_token(request))
    try:
        user_id = await cache.user_for_token(digest)
    except CacheUnavailableError as err:
        logger.info("checking a token in the database because the cache failed: %s", err)
        user_id = await run_in_threadpool(_user_for_token_row, engine, digest)
    if user_id is None:
        raise AuthenticationError("token is unknown or expired: log in again with /api/login")
    return user_id


def check_admin(admin_token: str, request: Request) -> None:
    """Accept the request only if its bearer token is the configured admin token."""
    token = bearer_token(request)
    if not hmac.compare_digest(token.encode(), admin_token.encode()):
        raise AuthenticationError("admin endpoints need the admin token from the platform config")
