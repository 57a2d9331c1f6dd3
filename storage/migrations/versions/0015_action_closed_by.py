"""pending_action.closed_by: the chat message that closed a prompt (a redelivered 确认 after a crash)

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-01 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0015'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('pending_action') as batch:
        batch.add_column(sa.Column('closed_by', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True))
        batch.create_index('ix_pending_action_closed_by', ['closed_by'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('pending_action') as batch:
        batch.drop_index('ix_pending_action_closed_by')
        batch.drop_column('closed_by')
