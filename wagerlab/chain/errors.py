"""Errors of the chain node, each mapped to one JSON-RPC error code.

A handler raises one of these; the server turns it into the `error` member of the
response. Codes follow the JSON-RPC 2.0 specification and the conventions of geth and
anvil (code 3 for a revert that carries data, -32000 for a rejected transaction).
"""

from __future__ import annotations

from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000
EXECUTION_REVERTED = 3


class NodeError(Exception):
    """Base class of every error the node reports to a JSON-RPC client."""

    code: int = INTERNAL_ERROR

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class ParseError(NodeError):
    """The request body is not valid JSON."""

    code = PARSE_ERROR


class InvalidRequest(NodeError):
    """The JSON is not a JSON-RPC 2.0 request object (or a batch of them)."""

    code = INVALID_REQUEST


class MethodNotFound(NodeError):
    code = METHOD_NOT_FOUND

    def __init__(self, method: str, reason: str = "does not exist/is not available") -> None:
        super().__init__(f"the method {method} {reason}")
        self.method = method


class InvalidParams(NodeError):
    """A parameter is missing, of the wrong type, or out of range."""

    code = INVALID_PARAMS

    def __init__(self, param: str, problem: str) -> None:
        super().__init__(f"invalid params: {param}: {problem}")
        self.param = param


class ExecutionReverted(NodeError):
    """A call or gas estimate reverted. `data` carries the revert data as 0x-prefixed hex."""

    code = EXECUTION_REVERTED

    def __init__(self, revert_data: bytes, reason: str | None = None) -> None:
        message = "execution reverted" if reason is None else f"execution reverted: {reason}"
        super().__init__(message, data="0x" + revert_data.hex())
        self.revert_data = revert_data


class TransactionRejected(NodeError):
    """The node rejected a transaction before mining it (bad nonce, funds, signature)."""

    code = SERVER_ERROR


class ResourceNotFound(NodeError):
    """A block named by the request does not exist on the canonical chain."""

    code = SERVER_ERROR


class InternalError(NodeError):
    code = INTERNAL_ERROR


class FilterNotFound(NodeError):
    """A filter id that is not installed; geth and anvil send "filter not found"."""

    code = SERVER_ERROR


class StateFileError(Exception):
    """A `--state` file cannot be read, does not fit this node, or fails to replay."""
