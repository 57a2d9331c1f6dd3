"""dingtalk signs: a DingTalk callback sign is accepted for one msgId only

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 09:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('dingtalk_sign',
    sa.Column('sign', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('msg_id', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('seen_at', storage.types.AwareDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sign')
    )
    with op.batch_alter_table('dingtalk_sign', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dingtalk_sign_seen_at'), ['seen_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dingtalk_sign', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dingtalk_sign_seen_at'))

    op.drop_table('dingtalk_sign')
