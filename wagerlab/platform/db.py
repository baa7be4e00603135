"""Database tables that mirror chain state, and the engine and sessions to reach them.

Amounts are integers in the token's smallest unit, stored as 64-bit integers. Balances
live per address in `accounts`, because a deposit can arrive before its owner registers.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint, event
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, create_engine


def now_ms() -> int:
    return int(time.time() * 1000)


class MarketStatus(str, enum.Enum):
    OPEN = "open"
    CLOSED = "closed"
    SETTLED = "settled"
    VOIDED = "voided"


class BetStatus(str, enum.Enum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"
    VOIDED = "voided"
    CLAIMED = "claimed"
    REFUNDED = "refunded"


class AlertSeverity(str, enum.Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class TxStatus(str, enum.Enum):
    PENDING = "pending"
    MINED = "mined"
    REVERTED = "reverted"
    REJECTED = "rejected"


class RetryStatus(str, enum.Enum):
    QUEUED = "queued"
    SENT = "sent"
    """An upstream returned a final response, which may still be an error such as 401."""
    FAILED = "failed"
    """Every send allowed by the gateway's `retry_attempts` limit failed."""


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True, max_length=64)
    password_hash: str
    address: str = Field(unique=True, index=True, max_length=42)
    """Checksum address of the bettor's wallet."""
    created_at: int = Field(default_factory=now_ms, sa_type=BigInteger)


class AuthToken(SQLModel, table=True):
    """A bearer token's SHA-256 digest. Token checks go to Redis, and this table is the
    fallback while Redis is unreachable."""

    __tablename__ = "auth_tokens"

    digest: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="users.id", index=True)
    expires_at: int = Field(sa_type=BigInteger, index=True)
    """Milliseconds since the Unix epoch."""


class Account(SQLModel, table=True):
    """The platform's view of one address's book balance on the Sportsbook."""

    __tablename__ = "accounts"

    address: str = Field(primary_key=True, max_length=42)
    available: int = Field(default=0, sa_type=BigInteger)
    staked: int = Field(default=0, sa_type=BigInteger)


class Market(SQLModel, table=True):
    __tablename__ = "markets"

    market_id: int = Field(primary_key=True, sa_type=BigInteger)
    name: str = Field(max_length=200)
    outcomes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    status: MarketStatus = Field(default=MarketStatus.OPEN)
    closes_at: int = Field(sa_type=BigInteger)
    """Unix time in seconds after which the contract takes no bets."""
    liability_cap: int = Field(sa_type=BigInteger)
    winning_outcome: int | None = None
    total_payout: int | None = Field(default=None, sa_type=BigInteger)


class MarketOdds(SQLModel, table=True):
    """Current odds of a market, one fixed-point integer per outcome."""

    __tablename__ = "odds"

    market_id: int = Field(primary_key=True, foreign_key="markets.market_id", sa_type=BigInteger)
    odds: list[int] = Field(sa_column=Column(JSON, nullable=False))
    version: int = 1
    updated_at: int = Field(default_factory=now_ms, sa_type=BigInteger)


class Quote(SQLModel, table=True):
    """A quote the odds signer issued; the nonce is the contract's replay key."""

    __tablename__ = "quotes"

    nonce: str = Field(primary_key=True, max_length=78)
    """uint256 nonce as a decimal string (it does not fit a 64-bit column)."""
    user_id: int = Field(foreign_key="users.id", index=True)
    bettor: str = Field(max_length=42)
    market_id: int = Field(sa_type=BigInteger)
    outcome: int
    odds: int = Field(sa_type=BigInteger)
    max_stake: int = Field(sa_type=BigInteger)
    expiry: int = Field(sa_type=BigInteger)
    signature: str
    created_at: int = Field(default_factory=now_ms, sa_type=BigInteger)


class Bet(SQLModel, table=True):
    __tablename__ = "bets"

    bet_id: int = Field(primary_key=True, sa_type=BigInteger)
    """The Sportsbook's bet id."""
    bettor: str = Field(index=True, max_length=42)
    market_id: int = Field(index=True, sa_type=BigInteger)
    outcome: int
    stake: int = Field(sa_type=BigInteger)
    odds: int = Field(sa_type=BigInteger)
    payout: int = Field(sa_type=BigInteger)
    nonce: str = Field(max_length=78)
    status: BetStatus = Field(default=BetStatus.OPEN)
    tx_hash: str = Field(max_length=66)
    block_number: int = Field(sa_type=BigInteger)


class ChainEvent(SQLModel, table=True):
    """One applied log. The unique key makes applying a log a second time impossible."""

    __tablename__ = "chain_events"
    __table_args__ = (UniqueConstraint("chain_id", "tx_hash", "log_index", name="uq_chain_event"),)

    id: int | None = Field(default=None, primary_key=True)
    chain_id: int = Field(sa_type=BigInteger)
    """EIP-155 chain id; the dev node's is above 2**31, too large for a 32-bit column."""
    tx_hash: str = Field(max_length=66)
    log_index: int
    block_number: int = Field(index=True, sa_type=BigInteger)
    block_hash: str = Field(max_length=66)
    event: str = Field(max_length=64)
    monitor: str = Field(max_length=32)
    args: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    applied_at: int = Field(default_factory=now_ms, sa_type=BigInteger)


class LedgerEntry(SQLModel, table=True):
    """One leg of a double entry. The legs of one event sum to zero."""

    __tablename__ = "ledger_entries"

    id: int | None = Field(default=None, primary_key=True)
    event_id: int | None = Field(default=None, foreign_key="chain_events.id", index=True)
    """The applied log that moved the balance; None for the legs of a correction."""
    correction_id: int | None = Field(default=None, foreign_key="corrections.id", index=True)
    """The reconciliation correction that moved the balance; None for the legs of a log."""
    account: str = Field(index=True, max_length=80)
    """`available:ADDRESS`, `staked:ADDRESS`, `wallet:ADDRESS` (outside the book), `house`,
    or `reconciliation` (the other side of a correction's legs)."""
    amount: int = Field(sa_type=BigInteger)


class Correction(SQLModel, table=True):
    """One divergence between the database and the chain that reconciliation repaired."""

    __tablename__ = "corrections"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True, max_length=32)
    """What was corrected, e.g. `available`, `staked`, `bet_fields`, `bet_status`, `market_status`."""
    subject: str = Field(max_length=80)
    """The address, `bet N` or `market N` the correction changed."""
    before: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    after: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    reason: str
    block_number: int = Field(sa_type=BigInteger)
    """The chain block whose state the database was compared with."""
    created_at: int = Field(default_factory=now_ms, sa_type=BigInteger, index=True)


class MonitorCursor(SQLModel, table=True):
    """The last log a monitor applied, stored in the same transaction as its effects."""

    __tablename__ = "monitor_cursors"

    monitor: str = Field(primary_key=True, max_length=32)
    block_number: int = Field(sa_type=BigInteger)
    log_index: int = -1
    """-1 means every log up to and including `block_number - 1` and none of this block."""
    updated_at: int = Field(default_factory=now_ms, sa_type=BigInteger)


class ChainTransaction(SQLModel, table=True):
    """A transaction the blockchain interaction service sent, tracked to its receipt."""

    __tablename__ = "chain_transactions"

    tx_id: str = Field(primary_key=True, max_length=36)
    idempotency_key: str = Field(unique=True, max_length=200)
    kind: str = Field(max_length=16)
    """`relay` for a bettor's signed transaction, `operator` for the platform's own."""
    function: str = Field(max_length=64)
    sender: str = Field(max_length=42)
    nonce: int | None = Field(default=None, sa_type=BigInteger)
    tx_hash: str | None = Field(default=None, index=True, max_length=66)
    raw_transaction: str | None = None
    status: TxStatus = Field(default=TxStatus.PENDING)
    block_number: int | None = Field(default=None, sa_type=BigInteger)
    error: str | None = None
    attempts: int = 0
    created_at: int = Field(default_factory=now_ms, sa_type=BigInteger)
    updated_at: int = Field(default_factory=now_ms, sa_type=BigInteger)
    request_id: str | None = Field(default=None, index=True, max_length=128)
    """`X-Request-ID` of the HTTP request that created the row; None for rows made without one."""


class GatewayRetry(SQLModel, table=True):
    """A bet or claim submission that the gateway queued because chainapi or the api was down.

    The gateway writes the row before it responds 202, and a restarted gateway resumes every
    queued row. `headers` contains the bettor's Authorization header only while the row is
    queued (`wagerlab.platform.gateway.retry` explains why storing it is safe).
    """

    __tablename__ = "gateway_retries"

    key: str = Field(primary_key=True, max_length=66)
    """Hash of the signed transaction in the body, which is also the api's relay idempotency key."""
    method: str = Field(max_length=8)
    path: str = Field(max_length=64)
    headers: dict[str, str] = Field(sa_column=Column(JSON, nullable=False))
    body: bytes
    token_sha256: str | None = Field(default=None, max_length=64)
    """SHA-256 hex digest of the bearer token that submitted the job, kept after the header is dropped.

    `GET /gateway/retries/{key}` returns the job only to that token or the admin token."""
    status: RetryStatus = Field(default=RetryStatus.QUEUED, index=True)
    attempts: int = 0
    last_error: str | None = None
    response_status: int | None = None
    response: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: int = Field(default_factory=now_ms, sa_type=BigInteger)
    updated_at: int = Field(default_factory=now_ms, sa_type=BigInteger)


class Alert(SQLModel, table=True):
    """An alert raised by a monitor, the supervisor or security monitoring."""

    __tablename__ = "alerts"

    id: int | None = Field(default=None, primary_key=True)
    rule: str = Field(index=True, max_length=64)
    """The rule that fired, e.g. `monitor_down` or `login_lockout`."""
    severity: AlertSeverity = Field(default=AlertSeverity.WARNING)
    source: str = Field(max_length=64)
    """The service or monitor that raised it."""
    detail: str
    created_at: int = Field(default_factory=now_ms, sa_type=BigInteger, index=True)


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and immediate write transactions.

    Sessions from `write_session` start with `BEGIN IMMEDIATE` on SQLite, because a
    deferred transaction that reads and then writes fails at once with "database is
    locked" when another process committed in between, whatever the busy timeout.
    """
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)

    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("sqlite_immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def create_tables(engine: Engine) -> None:
    """Create every table straight from the models, without Alembic; for tests on a new database."""
    SQLModel.metadata.create_all(engine)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision; services and the runner call it at start."""
    from wagerlab.platform.migrations import upgrade_to_head

    upgrade_to_head(engine)


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """Yield a session whose transaction takes the write lock first and commits on exit.

    Objects stay readable after the commit (no expiry), so a handler can build its
    response from the rows it just wrote once the session is closed.
    """
    with Session(engine.execution_options(sqlite_immediate=True), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def read_session(engine: Engine) -> Session:
    return Session(engine)
