"""Store the gateway's queued bet and claim submissions, so a restart loses none.

Revision ID: 0004
Revises: 0003
Created: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('gateway_retries',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
    sa.Column('method', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('path', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('headers', sa.JSON(), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('status', sa.Enum('QUEUED', 'SENT', 'FAILED', name='retrystatus'), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('response_status', sa.Integer(), nullable=True),
    sa.Column('response', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('gateway_retries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gateway_retries_status'), ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('gateway_retries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gateway_retries_status'))

    op.drop_table('gateway_retries')
    # PostgreSQL keeps an enum type after its table is dropped; SQLite has none.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TYPE IF EXISTS retrystatus")
