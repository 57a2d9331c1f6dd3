"""intake_item: inbound work of its own (platform events first), deduplicated by natural key

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'intake_item',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column('order_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('payload', storage.types.JSONDoc(), nullable=False),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('received_at', storage.types.AwareDateTime(timezone=True), nullable=False),
        sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=True),
        sa.Column('claimed_until', storage.types.AwareDateTime(timezone=True), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column('done_at', storage.types.AwareDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('source', 'key', name='uq_intake_item_source_key'),
    )
    with op.batch_alter_table('intake_item') as batch:
        batch.create_index('ix_intake_item_due', ['status', 'id'], unique=False)
        batch.create_index('ix_intake_item_order_key', ['order_key'], unique=False)
        batch.create_index('ix_intake_item_received_at', ['received_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('intake_item') as batch:
        batch.drop_index('ix_intake_item_received_at')
        batch.drop_index('ix_intake_item_order_key')
        batch.drop_index('ix_intake_item_due')
    op.drop_table('intake_item')
