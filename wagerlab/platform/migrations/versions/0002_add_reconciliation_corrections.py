"""Add reconciliation corrections and let a ledger leg belong to one.

Revision ID: 0002
Revises: 0001
Created: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

FOREIGN_KEY = "ledger_entries_correction_id_fkey"
"""The name PostgreSQL gives the models' unnamed foreign key, used on both databases."""


def upgrade() -> None:
    op.create_table('corrections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('before', sa.JSON(), nullable=False),
    sa.Column('after', sa.JSON(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('corrections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_corrections_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_corrections_kind'), ['kind'], unique=False)

    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('correction_id', sa.Integer(), nullable=True))
        batch_op.alter_column('event_id',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.create_index(batch_op.f('ix_ledger_entries_correction_id'), ['correction_id'], unique=False)
        batch_op.create_foreign_key(FOREIGN_KEY, 'corrections', ['correction_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_constraint(FOREIGN_KEY, type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_ledger_entries_correction_id'))
        batch_op.alter_column('event_id',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.drop_column('correction_id')

    with op.batch_alter_table('corrections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_corrections_kind'))
        batch_op.drop_index(batch_op.f('ix_corrections_created_at'))

    op.drop_table('corrections')
