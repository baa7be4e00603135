"""Bets and claims (signed by the bettor, relayed through chainapi), balances and deposits."""

from __future__ import annotations

import logging
from typing import Any

from eth_utils import to_checksum_address
from sqlalchemy.engine import Engine
from sqlmodel import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from wagerlab.odds import MAX_DB_AMOUNT
from wagerlab.platform import quotes
from wagerlab.platform.api.context import ApiContext, context, current_user
from wagerlab.platform.api.pause import reject_if_paused
from wagerlab.platform.api.validation import (
    parse_path_int,
    read_json_object,
    require_hex_bytes,
)
from wagerlab.platform.chainapi.rawtx import (
    CalldataError,
    ContractCall,
    RawTransaction,
    RawTransactionError,
    decode_raw_transaction,
    sportsbook_codec,
)
from wagerlab.platform.chainapi.store import transaction_json
from wagerlab.platform.db import (
    Account,
    Bet,
    BetStatus,
    ChainTransaction,
    Quote,
    User,
    read_session,
)
from wagerlab.platform.errors import NotFoundError, ValidationError

logger = logging.getLogger(__name__)


def decode_sportsbook_call(ctx: ApiContext, user: User, raw: bytes, function: str) -> tuple[RawTransaction, ContractCall]:
    """Decode a bettor's signed transaction and check it calls `function` on our Sportsbook."""
    try:
        tx = decode_raw_transaction(raw)
    except RawTransactionError as err:
        raise ValidationError(str(err), field="raw_transaction") from err

    deployment = ctx.config.deployment
    if tx.sender != user.address:
        detail = f"transaction is signed by {tx.sender}, but your registered address is {user.address}"
        raise ValidationError(detail, field="raw_transaction.from")
    if tx.to != to_checksum_address(deployment.sportsbook):
        detail = f"transaction is sent to {tx.to}, expected the Sportsbook at {deployment.sportsbook}"
        raise ValidationError(detail, field="raw_transaction.to")
    if tx.chain_id != deployment.chain_id:
        detail = f"transaction is signed for chain id {tx.chain_id}, expected {deployment.chain_id}"
        raise ValidationError(detail, field="raw_transaction.chain_id")

    try:
        call = sportsbook_codec().decode(tx.data)
    except CalldataError as err:
        raise ValidationError(str(err), field="raw_transaction.function") from err
    if call.function != function:
        detail = f"transaction calls {call.function}, expected {function}"
        raise ValidationError(detail, field="raw_transaction.function")
    return tx, call


def _issued_quote(engine: Engine, nonce: int) -> Quote | None:
    with read_session(engine) as session:
        row = session.get(Quote, str(nonce))
        return None if row is None else Quote(**row.model_dump())


async def _check_quote(ctx: ApiContext, user: User, call: ContractCall) -> None:
    nonce = call.args["quote"]["nonce"]
    issued = await run_in_threadpool(_issued_quote, ctx.engine, nonce)
    if issued is None or issued.user_id != user.id:
        raise ValidationError(f"quote nonce {nonce} was not issued to you by this platform", field="quote.nonce")
    quotes.check_bet_matches_quote(call.args, issued)
    now = await ctx.clock.now()
    if issued.expiry < now:
        raise ValidationError(f"quote expired at {issued.expiry} (now {now}): request a new one", field="quote.expiry")


async def _relay(ctx: ApiContext, tx: RawTransaction) -> JSONResponse:
    relayed = await ctx.chainapi.relay("0x" + tx.raw.hex(), tx.tx_hash)
    return JSONResponse({"tx_id": relayed["tx_id"], "tx_hash": relayed["tx_hash"]}, status_code=202)


async def post_bet(request: Request) -> JSONResponse:
    ctx = context(request)
    user = await current_user(request)
    body = await read_json_object(request)
    raw = require_hex_bytes(body, "raw_transaction")

    tx, call = decode_sportsbook_call(ctx, user, raw, "placeBet")
    await _check_quote(ctx, user, call)
    await reject_if_paused(ctx.pause, "a bet")
    logger.info("relaying placeBet %s of user %s (quote %s)", tx.tx_hash, user.id, call.args["quote"]["nonce"])
    return await _relay(ctx, tx)


def _bet(engine: Engine, bet_id: int) -> Bet | None:
    with read_session(engine) as session:
        row = session.get(Bet, bet_id)
        return None if row is None else Bet(**row.model_dump())


async def post_claim(request: Request) -> JSONResponse:
    ctx = context(request)
    user = await current_user(request)
    body = await read_json_object(request)
    raw = require_hex_bytes(body, "raw_transaction")

    tx, call = decode_sportsbook_call(ctx, user, raw, "claim")
    bet_id = call.args["betId"]
    if not 1 <= bet_id <= MAX_DB_AMOUNT:
        raise NotFoundError(f"bet {bet_id} does not exist: bet ids run from 1 to {MAX_DB_AMOUNT}", field="bet_id")
    # NOTE: a bet the bets monitor has not stored yet is relayed unchecked; the contract
    # still rejects a claim by anyone but the bettor.
    bet = await run_in_threadpool(_bet, ctx.engine, bet_id)
    if bet is not None and bet.bettor != user.address:
        raise ValidationError(f"bet {bet_id} belongs to {bet.bettor}, not to you", field="bet_id")
    logger.info("relaying claim %s of user %s (bet %s)", tx.tx_hash, user.id, bet_id)
    return await _relay(ctx, tx)


def bet_json(bet: Bet) -> dict[str, Any]:
    return {
        "bet_id": bet.bet_id,
        "market_id": bet.market_id,
        "outcome": bet.outcome,
        "stake": bet.stake,
        "odds": bet.odds,
        "payout": bet.payout,
        "nonce": int(bet.nonce),
        "status": BetStatus(bet.status).value,
        "tx_hash": bet.tx_hash,
        "block_number": bet.block_number,
    }


def _bets_of(engine: Engine, address: str) -> list[dict[str, Any]]:
    with read_session(engine) as session:
        query = select(Bet).where(Bet.bettor == address).order_by(Bet.bet_id)
        return [bet_json(bet) for bet in session.exec(query)]


async def list_bets(request: Request) -> JSONResponse:
    user = await current_user(request)
    return JSONResponse(await run_in_threadpool(_bets_of, context(request).engine, user.address))


async def get_bet(request: Request) -> JSONResponse:
    user = await current_user(request)
    bet_id = parse_path_int(request, "bet_id")
    bet = await run_in_threadpool(_bet, context(request).engine, bet_id)
    if bet is None or bet.bettor != user.address:
        raise NotFoundError(f"you have no bet {bet_id}", field="bet_id")
    return JSONResponse(bet_json(bet))


def _balance(engine: Engine, address: str) -> dict[str, int]:
    with read_session(engine) as session:
        account = session.get(Account, address)
        if account is None:
            return {"available": 0, "staked": 0}
        return {"available": account.available, "staked": account.staked}


async def get_balance(request: Request) -> JSONResponse:
    user = await current_user(request)
    return JSONResponse(await run_in_threadpool(_balance, context(request).engine, user.address))


async def get_deposit(request: Request) -> JSONResponse:
    await current_user(request)
    deployment = context(request).config.deployment
    steps = [
        {"contract": deployment.token, "call": "approve(address spender, uint256 amount)",
         "args": {"spender": deployment.sportsbook, "amount": "AMOUNT"},
         "note": "let the Sportsbook take AMOUNT of your WAGER tokens (6 decimals)"},
        {"contract": deployment.sportsbook, "call": "deposit(uint256 amount)",
         "args": {"amount": "AMOUNT"},
         "note": "move AMOUNT into your book balance; GET /api/balance shows it once the deposit monitor saw it"},
    ]
    return JSONResponse(
        {"chain_id": deployment.chain_id, "token": deployment.token, "sportsbook": deployment.sportsbook, "steps": steps}
    )


def _transaction(engine: Engine, tx_id: str) -> ChainTransaction | None:
    with read_session(engine) as session:
        row = session.get(ChainTransaction, tx_id)
        return None if row is None else ChainTransaction(**row.model_dump())


async def get_transaction(request: Request) -> JSONResponse:
    user = await current_user(request)
    tx_id = request.path_params["tx_id"]
    row = await run_in_threadpool(_transaction, context(request).engine, tx_id)
    if row is None or row.sender != user.address:
        raise NotFoundError(f"you have no transaction {tx_id!r}", field="tx_id")
    return JSONResponse(transaction_json(row))
