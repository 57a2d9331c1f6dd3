"""pace_mark: per-destination sends shared by replicas (outbox pacing through the database)

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = '0013'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'pace_mark',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('destination', sqlmodel.sql.sqltypes.AutoString(length=600), nullable=False),
        sa.Column('at', storage.types.AwareDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_pace_mark_destination_at', 'pace_mark', ['destination', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_pace_mark_destination_at', table_name='pace_mark')
    op.drop_table('pace_mark')
