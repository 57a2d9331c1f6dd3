"""web console: one-time login links and server-side sessions

Revision ID: 0011
Revises: 0014
Create Date: 2026-12-01 11:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types


revision: str = '0011'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('console_login',
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('person_key', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
    sa.Column('created_at', storage.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', storage.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('used_at', storage.types.AwareDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('token_hash')
    )
    with op.batch_alter_table('console_login', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_login_person_key'), ['person_key'], unique=False)
    op.create_table('console_session',
    sa.Column('id_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('person_key', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
    sa.Column('csrf', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', storage.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', storage.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', storage.types.AwareDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id_hash')
    )
    with op.batch_alter_table('console_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_session_person_key'), ['person_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_console_session_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('console_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_session_expires_at'))
        batch_op.drop_index(batch_op.f('ix_console_session_person_key'))
    op.drop_table('console_session')
    with op.batch_alter_table('console_login', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_login_person_key'))
    op.drop_table('console_login')
