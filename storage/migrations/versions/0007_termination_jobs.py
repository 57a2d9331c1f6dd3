"""termination jobs

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types


revision: str = '0007'
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('termination_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('interview_id', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('open_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('reason_code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('operator', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('chat', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('notify_to', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('save_result', storage.types.JSONDoc(), nullable=False),
    sa.Column('terminate_result', storage.types.JSONDoc(), nullable=False),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('claimed_until', storage.types.AwareDateTime(timezone=True), nullable=True),
    sa.Column('resumed', sa.Boolean(), nullable=False),
    sa.Column('created_at', storage.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', storage.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', storage.types.AwareDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['interview_id'], ['interview.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('open_key', name='uq_termination_job_open_key')
    )
    with op.batch_alter_table('termination_job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_termination_job_interview_id'), ['interview_id'], unique=False)
        batch_op.create_index('ix_termination_job_state', ['state', 'claimed_until'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('termination_job', schema=None) as batch_op:
        batch_op.drop_index('ix_termination_job_state')
        batch_op.drop_index(batch_op.f('ix_termination_job_interview_id'))
    op.drop_table('termination_job')
