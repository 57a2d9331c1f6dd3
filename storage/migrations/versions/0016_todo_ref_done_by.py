"""todo.ref and todo.done_by: a 求助's to-do closes with the request, recording who closed it

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('todo') as batch:
        batch.add_column(sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch.add_column(sa.Column('done_by', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=True))
        batch.create_index('ix_todo_ref', ['ref'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('todo') as batch:
        batch.drop_index('ix_todo_ref')
        batch.drop_column('done_by')
        batch.drop_column('ref')
