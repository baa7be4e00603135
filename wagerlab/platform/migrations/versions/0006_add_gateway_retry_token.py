"""Store the digest of the bearer token that queued a gateway retry, so only its owner reads the job.

Revision ID: 0006
Revises: 0005
Created: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('gateway_retries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('gateway_retries', schema=None) as batch_op:
        batch_op.drop_column('token_sha256')
