"""webhook_endpoint: company systems that receive signed outbound events; notice rows by destination
(outbound events go in order per destination)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'webhook_endpoint',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('url', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column('secret', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('include_contacts', sa.Boolean(), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
        sa.Column('created_at', storage.types.AwareDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('notice') as batch:
        batch.create_index('ix_notice_destination', ['destination', 'id', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('notice') as batch:
        batch.drop_index('ix_notice_destination')
    op.drop_table('webhook_endpoint')
