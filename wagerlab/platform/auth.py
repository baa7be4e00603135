"""Passwords (argon2id), bearer tokens and the admin token of the REST API.

A token is 32 random bytes in urlsafe base64. The cache stores only its SHA-256 digest,
mapped to the user id, for `token_ttl_seconds`. Tokens and passwords are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from wagerlab.platform.cache import PlatformCache
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


async def issue_token(cache: PlatformCache, user_id: int) -> str:
    """Create a token for `user_id` and store its digest; return the token itself."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    await cache.store_token(token_digest(token), user_id)
    logger.info("issued a token for user %s", user_id)
    return token


def bearer_token(request: Request) -> str:
    """Return the token of an `Authorization: Bearer TOKEN` header."""
    header = request.headers.get("authorization")
    if header is None:
        raise AuthenticationError("missing Authorization header: send `Authorization: Bearer TOKEN` from /api/login")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("Authorization header must be `Bearer TOKEN`")
    return token.strip()


async def authenticated_user_id(cache: PlatformCache, request: Request) -> int:
    """Return the user id of the request's bearer token, 401 when unknown or expired."""
    user_id = await cache.user_for_token(token_digest(bearer_token(request)))
    if user_id is None:
        raise AuthenticationError("token is unknown or expired: log in again with /api/login")
    return user_id


def check_admin(admin_token: str, request: Request) -> None:
    """Accept the request only if its bearer token is the configured admin token."""
    token = bearer_token(request)
    if not hmac.compare_digest(token.encode(), admin_token.encode()):
        raise AuthenticationError("admin endpoints need the admin token from the platform config")
