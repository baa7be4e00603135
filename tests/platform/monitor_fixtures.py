"""Helpers for the monitor tests: a platform config, a database, and synthetic Sportsbook logs."""

from __future__ import annotations

from collections import defaultdict
from itertools import count
from pathlib import Path
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import event_abi_to_log_topic, keccak, to_checksum_address
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from wagerlab.platform.config import Deployment, PlatformConfig
from wagerlab.platform.db import Account, ChainEvent, LedgerEntry, MonitorCursor, create_tables, make_engine
from wagerlab.testing.backends import new_database_url
from wagerlab.platform.monitors.events import sportsbook_event_abis

CHAIN_ID = 131277322940537
SPORTSBOOK = to_checksum_address("0x" + "5b" * 20)
ALICE = to_checksum_address("0x" + "a1" * 20)
BOB = to_checksum_address("0x" + "b0" * 20)


def make_config(db_url: str, **overrides: Any) -> PlatformConfig:
    deployment = overrides.pop(
        "deployment",
        Deployment(chain_id=CHAIN_ID, token="0x" + "70" * 20, sportsbook=SPORTSBOOK, oracle="0x" + "0c" * 20, start_block=1),
    )
    fields: dict[str, Any] = {
        "rpc_url": "http://127.0.0.1:1",
        "ws_url": "ws://127.0.0.1:1",
        "db_url": db_url,
        "deployment": deployment,
        "operator_key": "0x" + "01".rjust(64, "0"),
        "odds_signer_key": "0x" + "02".rjust(64, "0"),
        "guardian_key": "0x" + "03".rjust(64, "0"),
        "admin_token": "test-admin-token",
    }
    fields.update(overrides)
    return PlatformConfig(**fields)


def make_database(tmp_path: Path) -> tuple[str, Engine]:
    url = new_database_url(tmp_path)
    engine = make_engine(url)
    create_tables(engine)
    return url, engine


class LogFactory:
    """Builds JSON-RPC log dicts (hex strings, as a node sends them) for Sportsbook events."""

    def __init__(self, address: str = SPORTSBOOK) -> None:
        self.address = address
        self._abis = sportsbook_event_abis()
        self._tx_numbers = count(1)

    def log(self, event: str, block: int, log_index: int = 0, *, removed: bool = False, tx_hash: str | None = None, **args: Any) -> dict[str, Any]:
        abi = self._abis[event]
        indexed = [item for item in abi["inputs"] if item["indexed"]]
        plain = [item for item in abi["inputs"] if not item["indexed"]]
        topics = ["0x" + event_abi_to_log_topic(abi).hex()]
        topics += ["0x" + abi_encode([item["type"]], [args[item["name"]]]).hex() for item in indexed]
        data = abi_encode([item["type"] for item in plain], [args[item["name"]] for item in plain])
        tx_hash = tx_hash or "0x" + keccak(text=f"tx{next(self._tx_numbers)}").hex()
        return {
            "address": self.address,
            "topics": topics,
            "data": "0x" + data.hex(),
            "blockNumber": hex(block),
            "blockHash": "0x" + keccak(text=f"block{block}").hex(),
            "transactionHash": tx_hash,
            "transactionIndex": "0x0",
            "logIndex": hex(log_index),
            "removed": removed,
        }


def account(engine: Engine, address: str) -> tuple[int, int]:
    """Return (available, staked) of an address, zeros when it has no row."""
    with Session(engine) as session:
        row = session.get(Account, address)
        return (row.available, row.staked) if row else (0, 0)


def cursor_of(engine: Engine, monitor: str) -> tuple[int, int] | None:
    with Session(engine) as session:
        row = session.get(MonitorCursor, monitor)
        return (row.block_number, row.log_index) if row else None


def event_rows(engine: Engine) -> list[ChainEvent]:
    with Session(engine) as session:
        return list(session.exec(select(ChainEvent).order_by(ChainEvent.id)).all())


def ledger_sums(engine: Engine) -> dict[int, int]:
    """Return the sum of the ledger legs of each event id."""
    sums: dict[int, int] = defaultdict(int)
    with Session(engine) as session:
        for entry in session.exec(select(LedgerEntry)).all():
            sums[entry.event_id] += entry.amount
    return dict(sums)


def ledger_balance(engine: Engine, account_name: str) -> int:
    with Session(engine) as session:
        entries = session.exec(select(LedgerEntry).where(LedgerEntry.account == account_name)).all()
        return sum(entry.amount for entry in entries)
