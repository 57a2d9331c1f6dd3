"""Seed data: the default exit reasons. A unit of work of its own (it commits)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ExitReason, ReasonCode

DEFAULT_REASONS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    # code, name, outcome, synonyms
    (
        ReasonCode.candidate_quit,
        "候选人放弃",
        "未完成",
        ("放弃", "不想面了", "不面了", "候选人不想继续", "主动放弃"),
    ),
    (
        ReasonCode.system_failure,
        "系统故障",
        "需要重新面试",
        (
            "网络卡顿",
            "摄像头故障",
            "掉线",
            "网络故障",
            "麦克风故障",
            "系统问题",
            # Device words: "摄像头打不开", "麦克风没声音", "网络断了" all name the failing part.
            "摄像头",
            "麦克风",
            "网络",
            "断网",
            "黑屏",
            "闪退",
            "卡顿",
            "没有声音",
            "没声音",
        ),
    ),
    (ReasonCode.unfamiliar, "操作不熟悉", "需要重新面试", ("不会操作", "操作不会", "不熟悉操作")),
    (ReasonCode.process_change, "流程调整", "需要重新面试", ("改人工面试", "流程变更", "岗位调整")),
    (ReasonCode.idle_timeout, "超时未操作", "未完成", ("超时", "长时间未操作", "无操作")),
    # For exits no other reason fits; the words typed are kept in the exit record's detail.
    (ReasonCode.other, "其他", "需要重新面试", ("其它", "其他原因")),
)


async def ensure_default_reasons(session: AsyncSession) -> int:
    """Add the default reasons a database lacks (by code) and commit; returns how many were added.

    Rows that exist are never changed, so admins' edits (names, synonyms, outcomes, order,
    ``active``) stay. A default added to an existing table goes after the reasons already there.
    To retire a default, set ``active`` false: a deleted one comes back at the next start.
    """
    rows = (await session.exec(select(ExitReason))).all()
    codes, names = {r.code for r in rows}, {r.name for r in rows}
    last = max((r.sort_order for r in rows), default=-1)
    added = 0
    for order, (code, name, outcome, synonyms) in enumerate(DEFAULT_REASONS):
        if code in codes or name in names:
            continue
        sort_order = order if not rows else max(order, last + 1 + added)
        session.add(
            ExitReason(code=str(code), name=name, outcome=outcome, synonyms=list(synonyms), sort_order=sort_order)
        )
        added += 1
    if not added:
        return 0
    try:
        await session.commit()
    except IntegrityError:  # another replica seeded at the same moment
        await session.rollback()
        return 0
    return added
