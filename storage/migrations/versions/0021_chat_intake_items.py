"""chat messages move into intake_item: the outbox's inbound work rows become intake items

Chat messages were stored as outbox rows (``notice`` kind ``inbound``, dedupe key
``inbound:<platform>:<key>``). They are intake items now (source = the platform, key = the
message's dedupe key, order_key = its sender), so an upgrade moves every such row:

- waiting or being processed (pending, sending): a ``received`` item due at once, its tries kept;
- given up on (dead): a ``failed`` item with its last error, visible in ``GET /api/intake``;
- processed (sent): nothing left to do, deleted (they were purged after 7 days anyway).

Their delivery attempts go with them. The claim of one source's items gets its index.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-09 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK = 500
PREFIX = "inbound:"

notice = sa.table(
    "notice",
    sa.column("id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("recipient", sa.String),
    sa.column("payload", storage.types.JSONDoc),
    sa.column("dedupe_key", sa.String),
    sa.column("status", sa.String),
    sa.column("attempts", sa.Integer),
    sa.column("last_error", sa.String),
    sa.column("created_at", storage.types.AwareDateTime(timezone=True)),
)
notice_attempt = sa.table("notice_attempt", sa.column("notice_id", sa.Integer))
intake_item = sa.table(
    "intake_item",
    sa.column("source", sa.String),
    sa.column("key", sa.String),
    sa.column("order_key", sa.String),
    sa.column("payload", storage.types.JSONDoc),
    sa.column("status", sa.String),
    sa.column("received_at", storage.types.AwareDateTime(timezone=True)),
    sa.column("claimed_by", sa.String),
    sa.column("claimed_until", storage.types.AwareDateTime(timezone=True)),
    sa.column("attempts", sa.Integer),
    sa.column("last_error", sa.String),
    sa.column("done_at", storage.types.AwareDateTime(timezone=True)),
)


def _item(row: sa.Row) -> dict[str, object] | None:
    """The intake item of one inbound work row; None for a row without a readable key."""
    platform, sep, key = str(row.dedupe_key or "").removeprefix(PREFIX).partition(":")
    if not sep or not platform or not key:
        return None
    payload = {k: v for k, v in dict(row.payload or {}).items() if k != "audience"}
    failed = row.status == "dead"
    return {
        "source": platform[:32],
        "key": key[:300],
        "order_key": str(row.recipient or "")[:200],
        "payload": payload,
        "status": "failed" if failed else "received",
        "received_at": row.created_at,
        "claimed_by": None,
        "claimed_until": None,
        "attempts": int(row.attempts or 0),
        "last_error": (row.last_error or "moved from the outbox")[:1000] if failed else row.last_error,
        "done_at": None,
    }


def upgrade() -> None:
    with op.batch_alter_table('intake_item') as batch:
        batch.create_index('ix_intake_item_source_due', ['source', 'status', 'id'], unique=False)
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.select(notice)
            .where(notice.c.kind == "inbound", notice.c.id > last)
            .order_by(notice.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            break
        last = rows[-1].id
        items = [item for row in rows if row.status != "sent" and (item := _item(row)) is not None]
        # Moved or processed ones go; a row whose key cannot be read (none was written so) stays.
        ids = [row.id for row in rows if row.status == "sent" or _item(row) is not None]
        if items:
            existing = {
                (source, key)
                for source, key in bind.execute(
                    sa.select(intake_item.c.source, intake_item.c.key).where(
                        intake_item.c.key.in_([str(item["key"]) for item in items])
                    )
                ).all()
            }
            new = [item for item in items if (item["source"], item["key"]) not in existing]
            if new:
                bind.execute(sa.insert(intake_item), new)
        bind.execute(sa.delete(notice_attempt).where(notice_attempt.c.notice_id.in_(ids)))
        bind.execute(sa.delete(notice).where(notice.c.id.in_(ids)))


def downgrade() -> None:
    # Chat items stay in intake_item (an older version does not read them): only the index goes.
    with op.batch_alter_table('intake_item') as batch:
        batch.drop_index('ix_intake_item_source_due')
