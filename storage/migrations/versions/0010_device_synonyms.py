"""system_failure: the device synonyms new databases are seeded with, added once to existing ones

Revision ID: 0010
Revises: 0005
Create Date: 2026-12-01 09:15:00

Data only. Databases seeded before these synonyms existed did not match "摄像头打不开" to
系统故障. The words are added to the row with code system_failure, if there is one, keeping
whatever the admin has there; the seed (storage/repo.py) never changes existing rows, so this
runs once. New databases have no rows yet at this point and are seeded with the full list.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADDED = ("摄像头", "麦克风", "网络", "断网", "黑屏", "闪退", "卡顿", "没有声音", "没声音")

reason = sa.table("exit_reason", sa.column("id", sa.Integer), sa.column("code", sa.String), sa.column("synonyms", sa.JSON))


def upgrade() -> None:
    bind = op.get_bind()
    row = bind.execute(sa.select(reason.c.id, reason.c.synonyms).where(reason.c.code == "system_failure")).first()
    if row is None:
        return
    synonyms = list(row.synonyms or [])
    merged = synonyms + [word for word in ADDED if word not in synonyms]
    if merged != synonyms:
        bind.execute(sa.update(reason).where(reason.c.id == row.id).values(synonyms=merged))


def downgrade() -> None:
    # Data only: the words cannot be told apart from ones an admin added, so they stay.
    pass
