"""Checks of JSON request bodies; each failure names the field and the value it got."""

from __future__ import annotations

import re
from typing import Any

from eth_typing import ChecksumAddress
from eth_utils import is_address, to_checksum_address
from starlette.requests import Request

from wagerlab.odds import MAX_DB_AMOUNT
from wagerlab.platform.errors import InvalidJsonError, ValidationError
from wagerlab.platform.jsonbody import UnacceptableJson, parse_json_body

Body = dict[str, Any]


async def read_json_object(request: Request) -> Body:
    """Parse the request body as a JSON object."""
    try:
        body = parse_json_body(await request.body())
    except UnacceptableJson as err:
        raise InvalidJsonError(str(err)) from err
    if not isinstance(body, dict):
        raise ValidationError(f"request body must be a JSON object, got {type(body).__name__}")
    return body


def _require(body: Body, name: str) -> Any:
    if name not in body or body[name] is None:
        raise ValidationError(f"{name} is missing", field=name)
    return body[name]


def check_int(value: Any, name: str, *, minimum: int = 0, maximum: int = MAX_DB_AMOUNT) -> int:
    """Return `value` if it is a JSON integer in [minimum, maximum] (booleans are not)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be an integer, got {value!r}", field=name)
    if not minimum <= value <= maximum:
        raise ValidationError(f"{name} must be between {minimum} and {maximum}, got {value!r}", field=name)
    return value


def require_int(body: Body, name: str, *, minimum: int = 0, maximum: int = MAX_DB_AMOUNT) -> int:
    return check_int(_require(body, name), name, minimum=minimum, maximum=maximum)


def require_str(body: Body, name: str, *, min_length: int = 1, max_length: int = 200) -> str:
    value = _require(body, name)
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string, got {value!r}", field=name)
    if not min_length <= len(value) <= max_length:
        raise ValidationError(
            f"{name} must be {min_length} to {max_length} characters long, got {len(value)}", field=name
        )
    return value


def require_pattern(body: Body, name: str, pattern: re.Pattern[str], *, explanation: str) -> str:
    value = require_str(body, name, max_length=10_000)
    if not pattern.fullmatch(value):
        raise ValidationError(f"{name} must be {explanation}, got {value!r}", field=name)
    return value


def require_address(body: Body, name: str) -> ChecksumAddress:
    value = require_str(body, name, max_length=42)
    if not value.startswith("0x") or not is_address(value):
        raise ValidationError(f"{name} must be a 0x-prefixed 20-byte hex address, got {value!r}", field=name)
    if value != value.lower() and value[2:] != value[2:].upper() and to_checksum_address(value) != value:
        raise ValidationError(f"{name} has an invalid checksum: {value!r}", field=name)
    return to_checksum_address(value)


def require_list(body: Body, name: str, *, min_length: int, max_length: int) -> list[Any]:
    value = _require(body, name)
    if not isinstance(value, list):
        raise ValidationError(f"{name} must be a list, got {value!r}", field=name)
    if not min_length <= len(value) <= max_length:
        raise ValidationError(f"{name} must have {min_length} to {max_length} items, got {len(value)}", field=name)
    return value


HEX_DATA = re.compile(r"0x(?:[0-9a-fA-F]{2})+")


def require_hex_bytes(body: Body, name: str) -> bytes:
    value = require_str(body, name, max_length=200_000)
    if not HEX_DATA.fullmatch(value):
        raise ValidationError(f"{name} must be 0x-prefixed hex bytes, got {value[:80]!r}", field=name)
    return bytes.fromhex(value[2:])


def parse_path_int(request: Request, name: str) -> int:
    """Return an integer path parameter, 422 when it is not a decimal integer."""
    text = request.path_params[name]
    if not (isinstance(text, str) and text.isascii() and text.isdigit()):
        return check_int(text, name)
    return check_int(int(text), name)
