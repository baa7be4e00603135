"""Create the platform tables.

Revision ID: 0001
Revises: none
Created: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('available', sa.BigInteger(), nullable=False),
    sa.Column('staked', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('address')
    )
    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rule', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('severity', sa.Enum('INFO', 'WARNING', 'CRITICAL', name='alertseverity'), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alerts_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_rule'), ['rule'], unique=False)

    op.create_table('bets',
    sa.Column('bet_id', sa.BigInteger(), nullable=False),
    sa.Column('bettor', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('market_id', sa.BigInteger(), nullable=False),
    sa.Column('outcome', sa.Integer(), nullable=False),
    sa.Column('stake', sa.BigInteger(), nullable=False),
    sa.Column('odds', sa.BigInteger(), nullable=False),
    sa.Column('payout', sa.BigInteger(), nullable=False),
    sa.Column('nonce', sqlmodel.sql.sqltypes.AutoString(length=78), nullable=False),
    sa.Column('status', sa.Enum('OPEN', 'WON', 'LOST', 'VOIDED', 'CLAIMED', 'REFUNDED', name='betstatus'), nullable=False),
    sa.Column('tx_hash', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('bet_id')
    )
    with op.batch_alter_table('bets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bets_bettor'), ['bettor'], unique=False)
        batch_op.create_index(batch_op.f('ix_bets_market_id'), ['market_id'], unique=False)

    op.create_table('chain_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('chain_id', sa.BigInteger(), nullable=False),
    sa.Column('tx_hash', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
    sa.Column('event', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('monitor', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('args', sa.JSON(), nullable=False),
    sa.Column('applied_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('chain_id', 'tx_hash', 'log_index', name='uq_chain_event')
    )
    with op.batch_alter_table('chain_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chain_events_block_number'), ['block_number'], unique=False)

    op.create_table('chain_transactions',
    sa.Column('tx_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('function', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('sender', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('nonce', sa.BigInteger(), nullable=True),
    sa.Column('tx_hash', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=True),
    sa.Column('raw_transaction', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('status', sa.Enum('PENDING', 'MINED', 'REVERTED', 'REJECTED', name='txstatus'), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('tx_id'),
    sa.UniqueConstraint('idempotency_key')
    )
    with op.batch_alter_table('chain_transactions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chain_transactions_tx_hash'), ['tx_hash'], unique=False)

    op.create_table('markets',
    sa.Column('market_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('outcomes', sa.JSON(), nullable=False),
    sa.Column('status', sa.Enum('OPEN', 'CLOSED', 'SETTLED', 'VOIDED', name='marketstatus'), nullable=False),
    sa.Column('closes_at', sa.BigInteger(), nullable=False),
    sa.Column('liability_cap', sa.BigInteger(), nullable=False),
    sa.Column('winning_outcome', sa.Integer(), nullable=True),
    sa.Column('total_payout', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('market_id')
    )
    op.create_table('monitor_cursors',
    sa.Column('monitor', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('monitor')
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_address'), ['address'], unique=True)
        batch_op.create_index(batch_op.f('ix_users_username'), ['username'], unique=True)

    op.create_table('ledger_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('account', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['chain_events.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entries_account'), ['account'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entries_event_id'), ['event_id'], unique=False)

    op.create_table('odds',
    sa.Column('market_id', sa.BigInteger(), nullable=False),
    sa.Column('odds', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['market_id'], ['markets.market_id'], ),
    sa.PrimaryKeyConstraint('market_id')
    )
    op.create_table('quotes',
    sa.Column('nonce', sqlmodel.sql.sqltypes.AutoString(length=78), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('bettor', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('market_id', sa.BigInteger(), nullable=False),
    sa.Column('outcome', sa.Integer(), nullable=False),
    sa.Column('odds', sa.BigInteger(), nullable=False),
    sa.Column('max_stake', sa.BigInteger(), nullable=False),
    sa.Column('expiry', sa.BigInteger(), nullable=False),
    sa.Column('signature', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('nonce')
    )
    with op.batch_alter_table('quotes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quotes_user_id'), ['user_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('quotes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quotes_user_id'))

    op.drop_table('quotes')
    op.drop_table('odds')
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entries_event_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_entries_account'))

    op.drop_table('ledger_entries')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_username'))
        batch_op.drop_index(batch_op.f('ix_users_address'))

    op.drop_table('users')
    op.drop_table('monitor_cursors')
    op.drop_table('markets')
    with op.batch_alter_table('chain_transactions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chain_transactions_tx_hash'))

    op.drop_table('chain_transactions')
    with op.batch_alter_table('chain_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chain_events_block_number'))

    op.drop_table('chain_events')
    with op.batch_alter_table('bets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bets_market_id'))
        batch_op.drop_index(batch_op.f('ix_bets_bettor'))

    op.drop_table('bets')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alerts_rule'))
        batch_op.drop_index(batch_op.f('ix_alerts_created_at'))

    op.drop_table('alerts')
    op.drop_table('accounts')
    _drop_enum_types()


ENUM_TYPES = ("alertseverity", "betstatus", "marketstatus", "txstatus")


def _drop_enum_types() -> None:
    """Drop the enum types PostgreSQL created with the tables (SQLite has none)."""
    if op.get_bind().dialect.name == "postgresql":
        for name in ENUM_TYPES:
            op.execute(f"DROP TYPE IF EXISTS {name}")
