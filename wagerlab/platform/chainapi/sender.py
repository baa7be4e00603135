"""Signing and sending transactions: nonces per signer, retries, and the send errors.

Every send is recorded in `chain_transactions` before it goes out, so a crash between
the two leaves a pending row that the receipt tracker sends again instead of a lost or
doubled transaction.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from web3 import AsyncWeb3
from web3.exceptions import Web3RPCError

from wagerlab.platform.chainapi import store
from wagerlab.platform.db import ChainTransaction, TxStatus
from wagerlab.platform.errors import NODE_UNREACHABLE_ERRORS

logger = logging.getLogger(__name__)

OPERATOR_GAS = 500_000
"""Gas limit of every platform transaction. Estimating it would run each call twice on
eth-tester. createMarket with 8 outcomes, the heaviest call chainapi sends, used 68,900 gas
on wagerlab's node."""

MAX_NONCE_RETRIES = 3
INTERNAL_ERROR = -32603
"""JSON-RPC code of a node that failed to handle a request (overload, a bug, injected faults).
The error tells nothing about the transaction, so the send counts as unanswered and is retried."""

UNREACHABLE_ERRORS = NODE_UNREACHABLE_ERRORS


class NodeUnreachableError(Exception):
    """The node did not respond or failed internally, so the transaction may or may not have arrived."""


class SendRejectedError(Exception):
    """The node rejected the transaction. The message is the node's own."""


def node_error_message(err: Exception) -> str:
    """Return the node's own message of a JSON-RPC error, or the exception text."""
    response = getattr(err, "rpc_response", None)
    if isinstance(response, dict) and isinstance(response.get("error"), dict):
        return str(response["error"].get("message", err))
    return str(err)


def node_error_code(err: Exception) -> int | None:
    response = getattr(err, "rpc_response", None)
    if isinstance(response, dict) and isinstance(response.get("error"), dict):
        code = response["error"].get("code")
        return code if isinstance(code, int) else None
    return None


def is_nonce_error(message: str) -> bool:
    return "nonce" in message.lower()


class NonceManager:
    """The next nonce of each signer, kept locally. Callers hold `lock(address)` while they use it."""

    def __init__(self, w3: AsyncWeb3) -> None:
        self.w3 = w3
        self._next: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def lock(self, address: ChecksumAddress) -> asyncio.Lock:
        return self._locks.setdefault(address, asyncio.Lock())

    async def peek(self, address: ChecksumAddress) -> int:
        if address not in self._next:
            await self.resync(address)
        return self._next[address]

    def advance(self, address: ChecksumAddress) -> None:
        self._next[address] += 1

    async def resync(self, address: ChecksumAddress) -> None:
        """Read the signer's pending transaction count from the node."""
        self._next[address] = await self.w3.eth.get_transaction_count(address, "pending")
        logger.info("nonce of %s synced from the node: %s", address, self._next[address])


@dataclass(frozen=True)
class OperatorCall:
    signer: LocalAccount
    to: ChecksumAddress
    data: bytes


class TransactionSender:
    """Sends relayed and platform transactions and records each attempt."""

    def __init__(self, w3: AsyncWeb3, engine: Engine, chain_id: int) -> None:
        self.w3 = w3
        self.engine = engine
        self.chain_id = chain_id
        self.nonces = NonceManager(w3)
        self.sent = asyncio.Event()
        """Set after each send, so the receipt tracker looks at once."""

    async def _update(self, tx_id: str, **changes: Any) -> ChainTransaction:
        return await run_in_threadpool(store.update_transaction, self.engine, tx_id, only_if_pending=True, **changes)

    async def _send_raw(self, raw: bytes) -> None:
        try:
            await self.w3.eth.send_raw_transaction(raw)
        except UNREACHABLE_ERRORS as err:
            raise NodeUnreachableError(f"node did not respond to eth_sendRawTransaction: {err!r}") from err
        except (Web3RPCError, ValueError) as err:
            if node_error_code(err) == INTERNAL_ERROR:
                raise NodeUnreachableError(f"node failed eth_sendRawTransaction internally: {node_error_message(err)}") from err
            raise SendRejectedError(node_error_message(err)) from err
        finally:
            self.sent.set()

    async def send_recorded(self, row: ChainTransaction) -> ChainTransaction:
        """Send the signed transaction stored in `row`, for a relay or for a retry after an outage."""
        assert row.raw_transaction is not None, "only a signed row can be sent"
        # Count the attempt before sending: the tracker may finish the row right after.
        row = await self._update(row.tx_id, attempts=row.attempts + 1)
        logger.info("sending tx %s (%s %s, hash %s, attempt %s)", row.tx_id, row.kind, row.function, row.tx_hash, row.attempts)
        try:
            await self._send_raw(bytes.fromhex(row.raw_transaction[2:]))  # type: ignore[index]
        except NodeUnreachableError as err:
            logger.warning("tx %s not sent, will retry: %s", row.tx_id, err)
            return await self._update(row.tx_id, error=str(err))
        except SendRejectedError as err:
            logger.warning("tx %s rejected by the node: %s", row.tx_id, err)
            return await self._update(row.tx_id, status=TxStatus.REJECTED, error=str(err))
        return await self._update(row.tx_id, error=None)

    async def send_operator(self, row: ChainTransaction, call: OperatorCall) -> ChainTransaction:
        """Sign `call` with the next nonce of its signer and send it, resyncing on nonce errors."""
        address = call.signer.address
        async with self.nonces.lock(address):
            for attempt in range(1, MAX_NONCE_RETRIES + 1):
                try:
                    row = await self._sign_into(row, call, await self.nonces.peek(address), attempt)
                except UNREACHABLE_ERRORS as err:
                    logger.warning("tx %s not signed because the node is unreachable: %r", row.tx_id, err)
                    error = f"not sent: the node was unreachable while preparing the transaction: {err!r}"
                    return await self._update(row.tx_id, status=TxStatus.REJECTED, error=error)
                try:
                    await self._send_raw(bytes.fromhex(row.raw_transaction[2:]))  # type: ignore[index]
                except NodeUnreachableError as err:
                    # The transaction may have arrived, so its nonce counts as used; the
                    # tracker sends the same bytes again until a receipt or a rejection.
                    self.nonces.advance(address)
                    logger.warning("tx %s not sent, will retry: %s", row.tx_id, err)
                    return await self._update(row.tx_id, error=str(err))
                except SendRejectedError as err:
                    if is_nonce_error(str(err)) and attempt < MAX_NONCE_RETRIES:
                        logger.warning("tx %s nonce %s rejected (%s); resyncing", row.tx_id, row.nonce, err)
                        await self.nonces.resync(address)
                        continue
                    logger.warning("tx %s rejected by the node: %s", row.tx_id, err)
                    return await self._update(row.tx_id, status=TxStatus.REJECTED, error=str(err))
                self.nonces.advance(address)
                logger.info("sent tx %s %s from %s nonce %s hash %s", row.tx_id, row.function, address, row.nonce, row.tx_hash)
                return await self._update(row.tx_id, error=None)
        raise AssertionError("unreachable: the last retry returns")

    async def _sign_into(self, row: ChainTransaction, call: OperatorCall, nonce: int, attempt: int) -> ChainTransaction:
        gas_price = await self.w3.eth.gas_price
        tx = {
            "to": call.to,
            "data": "0x" + call.data.hex(),
            "value": 0,
            "gas": OPERATOR_GAS,
            "gasPrice": gas_price,
            "nonce": nonce,
            "chainId": self.chain_id,
        }
        signed = call.signer.sign_transaction(tx)
        raw = "0x" + bytes(signed.raw_transaction).hex()
        tx_hash = "0x" + bytes(signed.hash).hex()
        return await self._update(row.tx_id, nonce=nonce, raw_transaction=raw, tx_hash=tx_hash, attempts=attempt)
