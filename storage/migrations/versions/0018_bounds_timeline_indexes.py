"""Indexes for paging an interview's timeline by (time, id); events without occurred_at get their received_at

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 06:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ('ix_platform_event_interview_time', 'platform_event', ['interview_platform_id', 'occurred_at', 'id']),
    ('ix_audit_event_interview_time', 'audit_event', ['interview_id', 'at', 'id']),
    ('ix_notice_interview_time', 'notice', ['interview_id', 'created_at', 'id']),
    ('ix_todo_interview_time', 'todo', ['interview_id', 'created_at', 'id']),
)


def upgrade() -> None:
    # The timeline orders events by occurred_at alone (so the index serves it).
    op.execute('UPDATE platform_event SET occurred_at = received_at WHERE occurred_at IS NULL')
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
