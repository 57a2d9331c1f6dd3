"""interview.ats and ats_reason_map: an exit written back to the company's recruiting system

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('interview') as batch:
        batch.add_column(sa.Column('ats', storage.types.JSONDoc(), nullable=True))
    op.create_table(
        'ats_reason_map',
        sa.Column('system', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('reason_code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('stage_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('termination_type', sa.Integer(), nullable=True),
        sa.Column('termination_reason_ids', storage.types.JSONDoc(), nullable=False),
        sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
        sa.Column('updated_at', storage.types.AwareDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('system', 'reason_code'),
    )


def downgrade() -> None:
    op.drop_table('ats_reason_map')
    with op.batch_alter_table('interview') as batch:
        batch.drop_column('ats')
