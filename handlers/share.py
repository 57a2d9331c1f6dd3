"""共享 <姓名|编号> <HR>: a manager lets another HR see and act on an interview they do not own."""

from __future__ import annotations

from bot.chat.messages import Reply
from bot.dispatcher import MANAGERS, Context, Router
from bot.services import notices
from handlers.common import STATUS_LABELS, picked_interview, resolve_one
from storage import repo
from storage.models import Role

router = Router("share")

USAGE = "共享 <姓名或面试编号> <HR姓名或用户ID>"


@router.command("共享", roles=MANAGERS, usage=USAGE, example="共享 张三 赵先生")
async def share(ctx: Context) -> list[Reply]:
    parts = ctx.args.split(" ")
    if len(parts) != 2:
        return [Reply(f"用法:{USAGE},例如:共享 张三 赵先生")]
    who, colleague = parts
    found, replies = await resolve_one(
        ctx, who, then="share.pick_interview", params={"to": colleague}, statuses=tuple(STATUS_LABELS)
    )
    if found is None:
        return replies
    return await _share(ctx, found[0].platform_id, colleague)


@router.answer("share.pick_interview")
async def on_pick(ctx: Context) -> list[Reply]:
    platform_id, replies = await picked_interview(ctx)
    if platform_id is None:
        return replies
    assert ctx.pending is not None
    return await _share(ctx, platform_id, ctx.pending.params["to"])


async def _share(ctx: Context, platform_id: str, colleague: str) -> list[Reply]:
    core = ctx.core
    now = core.clock.now()
    async with core.sessions() as session:
        people = [
            p
            for p in await repo.people_named(session, platform=ctx.msg.platform, name_or_id=colleague)
            if p.role in (Role.hr.value, Role.manager.value)
        ]
        if not people:
            return [Reply(f"找不到 HR「{colleague}」。请先用「授权」登记。")]
        if len(people) > 1:
            return [Reply(f"有多位「{colleague}」({'、'.join(p.user_id for p in people)}),请改用用户ID。")]
        person = people[0]
        interview = await repo.get_interview(session, platform_id=platform_id)
        assert interview is not None and interview.id is not None
        candidate = await repo.get_candidate(session, candidate_id=interview.candidate_id)
        assert candidate is not None
        person_key, person_name, candidate_name = person.key, person.name, candidate.name
        if interview.hr_key == person_key:
            return [Reply(f"{person_name} 本来就负责这场面试。")]
        # A failed insert rolls back and expires loaded rows: use the copies above afterwards.
        if not await repo.share_interview(
            session, interview_id=interview.id, person_key=person_key, shared_by=ctx.actor, now=now
        ):
            return [Reply(f"已经共享给 {person_name} 了。")]
        sharer = ctx.person.name if ctx.person else ctx.actor
        notices.notify_staff(
            session,
            core,
            kind="interview_shared",
            person_key=person.key,
            interview=interview,
            now=now,
            text=f"{sharer} 把 {candidate.name}({interview.position})的面试共享给了你,你可以查看、终止或重新安排它。",
            dedupe_key=f"shared:{interview.id}:{person.key}",
        )
        repo.audit(
            session,
            at=now,
            actor=ctx.actor,
            action="interview.shared",
            interview_id=interview.id,
            chat=ctx.chat,
            detail={"to": person.key},
        )
        await session.commit()
    core.wake_outbox()
    return [Reply(f"已把 {candidate_name} 的面试共享给 {person_name}。")]
