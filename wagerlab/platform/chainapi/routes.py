"""HTTP endpoints of chainapi: `POST /transactions` and `GET /transactions/{tx_id}`."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from web3 import AsyncWeb3

from wagerlab.logs import current_request_id
from wagerlab.platform.api.validation import Body, read_json_object, require_hex_bytes, require_list, require_str
from wagerlab.platform.chainapi import store
from wagerlab.platform.chainapi.rawtx import (
    CalldataError,
    RawTransaction,
    RawTransactionError,
    decode_raw_transaction,
    sportsbook_codec,
)
from wagerlab.platform.chainapi.sender import OperatorCall, TransactionSender
from wagerlab.platform.chainapi.tracker import ReceiptTracker
from wagerlab.platform.config import PlatformConfig
from wagerlab.platform.db import ChainTransaction
from wagerlab.platform.errors import NotFoundError, ValidationError

logger = logging.getLogger(__name__)


class Signer(enum.Enum):
    OPERATOR = "operator"
    GUARDIAN = "guardian"


OPERATOR_FUNCTIONS: dict[str, Signer] = {
    "createMarket": Signer.OPERATOR,
    "closeMarket": Signer.OPERATOR,
    "fundHouse": Signer.OPERATOR,
    "setOracle": Signer.OPERATOR,
    "pause": Signer.GUARDIAN,
    "unpause": Signer.GUARDIAN,
}
"""Sportsbook functions chainapi signs itself, and with which key."""


@dataclass
class ChainapiContext:
    config: PlatformConfig
    engine: Engine
    w3: AsyncWeb3
    sender: TransactionSender
    tracker: ReceiptTracker
    signers: dict[Signer, LocalAccount]

    @classmethod
    def create(cls, config: PlatformConfig, engine: Engine, w3: AsyncWeb3) -> ChainapiContext:
        sender = TransactionSender(w3, engine, config.deployment.chain_id)
        signers = {
            Signer.OPERATOR: Account.from_key(config.operator_key),
            Signer.GUARDIAN: Account.from_key(config.guardian_key),
        }
        return cls(config, engine, w3, sender, ReceiptTracker(w3, engine, sender), signers)


def _context(request: Request) -> ChainapiContext:
    return request.app.state.chainapi


def _decode_relay(ctx: ChainapiContext, body: Body) -> RawTransaction:
    raw = require_hex_bytes(body, "raw_transaction")
    try:
        tx = decode_raw_transaction(raw)
    except RawTransactionError as err:
        raise ValidationError(str(err), field="raw_transaction") from err
    chain_id = ctx.config.deployment.chain_id
    if tx.chain_id != chain_id:
        detail = f"raw transaction is signed for chain id {tx.chain_id}, expected {chain_id}"
        raise ValidationError(detail, field="raw_transaction")
    return tx


def _relay_function(ctx: ChainapiContext, tx: RawTransaction) -> str:
    """Return the Sportsbook function a relayed transaction calls, or `unknown`."""
    if tx.to != to_checksum_address(ctx.config.deployment.sportsbook):
        return "unknown"
    try:
        return sportsbook_codec().decode(tx.data).function
    except CalldataError:
        return "unknown"


async def _relay(ctx: ChainapiContext, body: Body, key: str) -> ChainTransaction:
    tx = _decode_relay(ctx, body)
    row, created = await run_in_threadpool(
        store.insert_transaction,
        ctx.engine,
        idempotency_key=key,
        kind="relay",
        function=_relay_function(ctx, tx),
        sender=tx.sender,
        nonce=tx.nonce,
        tx_hash=tx.tx_hash,
        raw_transaction="0x" + tx.raw.hex(),
        request_id=current_request_id(),
    )
    if not created:
        logger.info("relay with idempotency key %r repeats tx %s; not sent again", key, row.tx_id)
        return row
    return await ctx.sender.send_recorded(row)


async def _operator(ctx: ChainapiContext, body: Body, key: str) -> ChainTransaction:
    function = require_str(body, "function", max_length=64)
    if function not in OPERATOR_FUNCTIONS:
        detail = f"function must be one of {sorted(OPERATOR_FUNCTIONS)}, got {function!r}"
        raise ValidationError(detail, field="function")
    args = require_list(body, "args", min_length=0, max_length=16)
    try:
        data = sportsbook_codec().encode(function, args)
    except CalldataError as err:
        raise ValidationError(str(err), field="args") from err

    signer = ctx.signers[OPERATOR_FUNCTIONS[function]]
    row, created = await run_in_threadpool(
        store.insert_transaction,
        ctx.engine,
        idempotency_key=key,
        kind="operator",
        function=function,
        sender=signer.address,
        request_id=current_request_id(),
    )
    if not created:
        logger.info("operator call with idempotency key %r repeats tx %s; not sent again", key, row.tx_id)
        return row
    call = OperatorCall(signer=signer, to=to_checksum_address(ctx.config.deployment.sportsbook), data=data)
    return await ctx.sender.send_operator(row, call)


async def post_transaction(request: Request) -> JSONResponse:
    ctx = _context(request)
    body = await read_json_object(request)
    kind = require_str(body, "kind", max_length=16)
    key = require_str(body, "idempotency_key", max_length=200)
    if kind == "relay":
        row = await _relay(ctx, body, key)
    elif kind == "operator":
        row = await _operator(ctx, body, key)
    else:
        raise ValidationError(f"kind must be 'relay' or 'operator', got {kind!r}", field="kind")
    return JSONResponse(store.transaction_json(row), status_code=202)


async def get_transaction(request: Request) -> JSONResponse:
    tx_id = request.path_params["tx_id"]
    row = await run_in_threadpool(store.get_transaction, _context(request).engine, tx_id)
    if row is None:
        raise NotFoundError(f"transaction {tx_id!r} not found", field="tx_id")
    return JSONResponse(store.transaction_json(row))


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


routes = [
    Route("/transactions", post_transaction, methods=["POST"]),
    Route("/transactions/{tx_id}", get_transaction, methods=["GET"]),
    Route("/health", health, methods=["GET"]),
]
