"""A simulated wallet: signs transactions locally and talks JSON-RPC to the node over HTTP.

Actors use it the way a browser wallet does: the bettor's key never leaves the actor, and
the node receives ordinary `eth_sendRawTransaction` calls.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes

logger = logging.getLogger(__name__)

DEFAULT_GAS = 500_000
MAX_FEE_PER_GAS = 20 * 10**9
PRIORITY_FEE_PER_GAS = 10**9
RECEIPT_TIMEOUT_SECONDS = 60.0
INTERNAL_ERROR = -32603
RPC_ATTEMPTS = 10
"""Attempts per request that fails with an internal error, as a failing or overloaded node returns."""
RPC_RETRY_DELAY_SECONDS = 0.05


class RpcError(Exception):
    """The node returned a JSON-RPC error."""

    def __init__(self, method: str, error: dict[str, Any]):
        self.method = method
        self.code = error.get("code")
        self.data = error.get("data")
        super().__init__(f"{method} failed with JSON-RPC error {self.code}: {error.get('message')}")


class TransactionReverted(Exception):
    """A transaction was mined with receipt status 0."""

    def __init__(self, label: str, tx_hash: str, reason: str):
        self.tx_hash = tx_hash
        self.reason = reason
        super().__init__(f"{label} transaction {tx_hash} reverted: {reason}")


@dataclass(frozen=True)
class Receipt:
    tx_hash: str
    block_number: int
    status: int
    logs: list[dict[str, Any]]


class RpcClient:
    """A minimal asynchronous Ethereum JSON-RPC client over HTTP."""

    def __init__(self, url: str, client: httpx.AsyncClient):
        self.url = url
        self._client = client
        self._ids = itertools.count(1)

    async def call(self, method: str, *params: Any) -> Any:
        """Send one request; retry it while the node returns an internal error (-32603)."""
        for attempt in range(1, RPC_ATTEMPTS + 1):
            request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
            response = await self._client.post(self.url, json=request)
            response.raise_for_status()
            body = response.json()
            if "error" not in body:
                return body["result"]
            error = RpcError(method, body["error"])
            if error.code != INTERNAL_ERROR or attempt == RPC_ATTEMPTS:
                raise error
            logger.warning("%s failed (attempt %d of %d), retrying: %s", method, attempt, RPC_ATTEMPTS, error)
            await asyncio.sleep(RPC_RETRY_DELAY_SECONDS * attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def block_number(self) -> int:
        return int(await self.call("eth_blockNumber"), 16)

    async def nonce(self, address: str) -> int:
        return int(await self.call("eth_getTransactionCount", address, "pending"), 16)

    async def eth_call(self, to: str, data: str) -> str:
        return await self.call("eth_call", {"to": to, "data": data}, "latest")

    async def receipt(self, tx_hash: str, *, timeout: float = RECEIPT_TIMEOUT_SECONDS) -> Receipt:
        """Poll until the transaction has a receipt."""
        deadline = asyncio.get_running_loop().time() + timeout
        delay = 0.01
        while True:
            result = await self.call("eth_getTransactionReceipt", tx_hash)
            if result is not None:
                return Receipt(
                    tx_hash=tx_hash,
                    block_number=int(result["blockNumber"], 16),
                    status=int(result["status"], 16),
                    logs=result["logs"],
                )
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no receipt for {tx_hash} after {timeout} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)


class Wallet:
    """One account's signer with the node as its transport."""

    def __init__(self, account: LocalAccount, rpc: RpcClient, chain_id: int):
        self.account = account
        self.address = account.address
        self.rpc = rpc
        self.chain_id = chain_id

    async def sign(
        self, to: str, data: str, *, value: int = 0, gas: int = DEFAULT_GAS, nonce: int | None = None
    ) -> tuple[str, str]:
        """Sign a transaction (by default with the next pending nonce); return (raw hex, tx hash)."""
        tx = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": await self.rpc.nonce(self.address) if nonce is None else nonce,
            "to": to,
            "value": value,
            "data": data,
            "gas": gas,
            "maxFeePerGas": MAX_FEE_PER_GAS,
            "maxPriorityFeePerGas": PRIORITY_FEE_PER_GAS,
        }
        signed = self.account.sign_transaction(tx)
        return HexBytes(signed.raw_transaction).to_0x_hex(), HexBytes(signed.hash).to_0x_hex()

    async def transact(self, label: str, to: str, data: str, *, value: int = 0, gas: int = DEFAULT_GAS) -> Receipt:
        """Sign, send and wait for a transaction; raise TransactionReverted on status 0."""
        raw, tx_hash = await self.sign(to, data, value=value, gas=gas)
        await self.rpc.call("eth_sendRawTransaction", raw)
        receipt = await self.rpc.receipt(tx_hash)
        if receipt.status != 1:
            raise TransactionReverted(label, tx_hash, await self.revert_reason(to, data, receipt.block_number))
        return receipt

    async def transfer_to_many(self, recipients: list[str], value: int) -> None:
        """Send `value` wei to each recipient with consecutive nonces, then check every receipt."""
        first_nonce = await self.rpc.nonce(self.address)
        hashes = []
        for offset, recipient in enumerate(recipients):
            raw, tx_hash = await self.sign(recipient, "0x", value=value, gas=21_000, nonce=first_nonce + offset)
            await self.rpc.call("eth_sendRawTransaction", raw)
            hashes.append(tx_hash)
        for recipient, tx_hash in zip(recipients, hashes, strict=True):
            receipt = await self.rpc.receipt(tx_hash)
            if receipt.status != 1:
                raise TransactionReverted(f"transfer to {recipient}", tx_hash, "a plain ether transfer failed")

    async def revert_reason(self, to: str, data: str, block_number: int) -> str:
        """Replay a reverted call at its block's parent state to read the custom error."""
        from wagerlab.chain.contracts import decode_revert

        call = {"from": self.address, "to": to, "data": data}
        try:
            await self.rpc.call("eth_call", call, hex(max(block_number - 1, 0)))
        except RpcError as err:
            if isinstance(err.data, str) and err.data.startswith("0x"):
                return decode_revert(bytes.fromhex(err.data[2:]))
            return str(err)
        return "unknown (the replayed call succeeded)"
