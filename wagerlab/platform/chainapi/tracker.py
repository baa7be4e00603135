"""The background task that follows pending transactions to their receipts.

NOTE: a transaction stops being followed once mined. A reorg that drops it (a node's
`anvil_reorg` that does not list it) leaves it `mined` here, and it is not sent again. The
monitors reverse its logs, so the database still matches the chain.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from web3 import AsyncWeb3
from web3.exceptions import TransactionNotFound
from web3.types import RPCEndpoint

from wagerlab.platform.chainapi import store
from wagerlab.platform.chainapi.rawtx import decode_raw_transaction
from wagerlab.platform.chainapi.sender import UNREACHABLE_ERRORS, TransactionSender
from wagerlab.platform.db import ChainTransaction, TxStatus, now_ms

logger = logging.getLogger(__name__)


def decode_revert_data(data: str) -> str:
    from wagerlab.chain.contracts import decode_revert

    return decode_revert(bytes.fromhex(data.removeprefix("0x")))


class ReceiptTracker:
    """Polls receipts of pending rows, sends again what the node never got, and decodes reverts."""

    def __init__(
        self,
        w3: AsyncWeb3,
        engine: Engine,
        sender: TransactionSender,
        *,
        poll_seconds: float = 0.2,
        resend_after_ms: int = 2_000,
        max_attempts: int = 10,
        unsigned_timeout_ms: int = 30_000,
    ) -> None:
        self.w3 = w3
        self.engine = engine
        self.sender = sender
        self.poll_seconds = poll_seconds
        self.resend_after_ms = resend_after_ms
        self.max_attempts = max_attempts
        self.unsigned_timeout_ms = unsigned_timeout_ms
        self.node_down = False
        """True while the node is unreachable. The warning is logged once per outage."""

    async def run(self) -> None:
        """Check pending rows after every send and at least every `poll_seconds`, forever."""
        logger.info("receipt tracker started")
        while True:
            try:
                await asyncio.wait_for(self.sender.sent.wait(), self.poll_seconds)
            except TimeoutError:
                pass
            self.sender.sent.clear()
            try:
                await self.check_pending()
            except Exception:
                # The loop must outlive one bad row or a database hiccup; the next pass retries.
                logger.exception("receipt tracker pass failed; retrying in %s s", self.poll_seconds)

    async def check_pending(self) -> None:
        for row in await run_in_threadpool(store.pending_transactions, self.engine):
            try:
                await self.check_one(row)
            except UNREACHABLE_ERRORS as err:
                if not self.node_down:
                    logger.warning("receipt tracker: node unreachable at tx %s, waiting for it: %r", row.tx_id, err)
                self.node_down = True
                return
            if self.node_down:
                logger.info("receipt tracker: node reachable again")
                self.node_down = False

    async def check_one(self, row: ChainTransaction) -> None:
        age_ms = now_ms() - row.updated_at
        if row.tx_hash is None or row.raw_transaction is None:
            if age_ms > self.unsigned_timeout_ms:
                await self._finish(row, TxStatus.REJECTED, error="never signed: the service stopped before sending it")
            return

        receipt = await self._receipt(row.tx_hash)
        if receipt is not None:
            await self._apply_receipt(row, receipt)
        elif age_ms > self.resend_after_ms:
            await self._resend(row)

    async def _receipt(self, tx_hash: str) -> Any:
        try:
            return await self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None

    async def _apply_receipt(self, row: ChainTransaction, receipt: Any) -> None:
        block_number = int(receipt["blockNumber"])
        if int(receipt["status"]) == 1:
            await self._finish(row, TxStatus.MINED, block_number=block_number)
            return
        error = await self.revert_reason(row, block_number)
        await self._finish(row, TxStatus.REVERTED, block_number=block_number, error=error)

    async def _resend(self, row: ChainTransaction) -> None:
        if row.attempts >= self.max_attempts:
            error = f"no receipt after {row.attempts} sends; last error: {row.error}"
            await self._finish(row, TxStatus.REJECTED, error=error)
            return
        logger.info("tx %s has no receipt after %s ms; sending again", row.tx_id, now_ms() - row.updated_at)
        await self.sender.send_recorded(row)

    async def _finish(self, row: ChainTransaction, status: TxStatus, **changes: Any) -> None:
        await run_in_threadpool(store.update_transaction, self.engine, row.tx_id, status=status, **changes)
        log = logger.info if status == TxStatus.MINED else logger.warning
        log("tx %s %s %s: %s %s", row.tx_id, row.function, row.tx_hash, status.value, changes.get("error") or "")

    async def revert_reason(self, row: ChainTransaction, block_number: int) -> str:
        """Replay a reverted transaction with eth_call on its parent block and decode the error.

        Each transaction is mined in its own block, so the parent block's state is the state
        the transaction ran on. A replay can still differ, because eth_call runs with its
        own block timestamp.
        """
        assert row.raw_transaction is not None
        tx = decode_raw_transaction(bytes.fromhex(row.raw_transaction[2:]))
        call = {"from": tx.sender, "to": tx.to, "data": "0x" + tx.data.hex(), "value": hex(tx.value)}
        response = await self.w3.provider.make_request(RPCEndpoint("eth_call"), [call, hex(max(block_number - 1, 0))])
        error = response.get("error") if isinstance(response, dict) else None
        if not isinstance(error, dict):
            return f"reverted in block {block_number}; replaying it with eth_call did not revert"
        data = error.get("data")
        if isinstance(data, dict):
            data = data.get("data")
        if isinstance(data, str) and data.startswith("0x") and len(data) > 2:
            return decode_revert_data(data)
        return str(error.get("message", "reverted without revert data"))
