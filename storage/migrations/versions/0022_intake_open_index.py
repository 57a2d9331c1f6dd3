"""intake_item: one index for the open items of a source (by order key); drop indexes nobody reads

The store path asks which of a batch's interviews still have items to apply, the claim which
order keys are busy, the backlog how many are open: all by source, status and order key. SQLite,
whose statistics are never gathered here, read those through the (source, key) unique index, a
scan of every item ever stored. ``ix_intake_item_open`` serves all three; ``order_key`` and
``received_at`` alone were never queried, and platform_event's ``interview_platform_id`` index is
the prefix of ``ix_platform_event_interview_time``: each only cost every insert a write.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0022'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('intake_item') as batch:
        batch.drop_index('ix_intake_item_order_key')
        batch.drop_index('ix_intake_item_received_at')
        batch.create_index('ix_intake_item_open', ['source', 'status', 'order_key'], unique=False)
    with op.batch_alter_table('platform_event') as batch:
        batch.drop_index('ix_platform_event_interview_platform_id')


def downgrade() -> None:
    with op.batch_alter_table('platform_event') as batch:
        batch.create_index('ix_platform_event_interview_platform_id', ['interview_platform_id'], unique=False)
    with op.batch_alter_table('intake_item') as batch:
        batch.drop_index('ix_intake_item_open')
        batch.create_index('ix_intake_item_received_at', ['received_at'], unique=False)
        batch.create_index('ix_intake_item_order_key', ['order_key'], unique=False)
