"""Parsing request bodies as JSON with limits that keep hostile bodies harmless."""

from __future__ import annotations

import json
from typing import Any

MAX_BODY_BYTES = 64 * 1024
MAX_JSON_CONTAINERS = 256
"""More arrays and objects than any endpoint needs. A deeply nested body can overflow the
C stack inside json.loads (a segmentation fault in a worker thread), so such a body is
rejected before it is parsed."""


class UnacceptableJson(ValueError):
    """A request body is too large, too deeply nested or not valid JSON."""


def parse_json_body(raw: bytes) -> Any:
    if len(raw) > MAX_BODY_BYTES:
        raise UnacceptableJson(f"request body has {len(raw)} bytes; the limit is {MAX_BODY_BYTES}")
    containers = raw.count(b"[") + raw.count(b"{")
    if containers > MAX_JSON_CONTAINERS:
        raise UnacceptableJson(f"request body has {containers} JSON arrays and objects; the limit is {MAX_JSON_CONTAINERS}")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UnacceptableJson(f"request body is not valid JSON: {err}") from err
    except ValueError as err:
        # Python refuses to parse integers of more than 4,300 digits (int_max_str_digits).
        raise UnacceptableJson(f"request body is not acceptable JSON: {err}") from err
