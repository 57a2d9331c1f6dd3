"""重新安排 <姓名|编号> <时间>, and 重新安排 <时间> as the answer to a candidate's 求助."""

from __future__ import annotations

from datetime import datetime

from bot.channels.base import Reply
from bot.dispatcher import Context, Router
from bot.services import notices, scheduling, termination
from bot.services.claims import local_text
from bot.services.dates import parse_time
from bot.services.help_requests import HELP_ACTION, close_siblings
from bot.services.reasons import match_reason
from handlers.common import picked_interview, resolve_one
from storage import repo

router = Router("reschedule")

USAGE = "重新安排 <姓名或面试编号> <时间>"
EXAMPLE = "重新安排 张三 明天下午2点"
# Reschedulable: not started yet, or ended early.
STATUSES = ("scheduled", "terminated")
# When rescheduling answers a 求助 whose reason is not recognised.
HELP_FALLBACK_REASON = "流程调整"


@router.command("重新安排", "改期", usage=USAGE, example=EXAMPLE)
async def ask_reschedule(ctx: Context) -> list[Reply]:
    core = ctx.core
    now = core.clock.now()
    async with core.sessions() as session:
        help_request = await repo.latest_open_action(
            session, requester=ctx.actor, chat_id=None, now=now, actions=[HELP_ACTION]
        )
    if not ctx.args:
        if help_request is not None:  # the 求助 prompt's button: ask for the time
            return [Reply("请回复新的面试时间,例如:重新安排 明天下午2点")]
        return [Reply(f"用法:{USAGE},例如:{EXAMPLE}")]
    if help_request is not None:
        when = await parse_time(ctx.args, now=now, tz=core.settings.tz)
        if when is not None:
            return await _answer_help(ctx, help_request.params, when)
    who, _, time_text = ctx.args.partition(" ")
    when = await parse_time(time_text, now=now, tz=core.settings.tz) if time_text else None
    if when is None:
        return [Reply(f"没有看懂时间「{time_text}」。请写具体时间,例如:{EXAMPLE}、周五上午10:30、11月28日 14:00")]
    found, replies = await resolve_one(
        ctx, who, then="reschedule.pick_interview", params={"at": when.isoformat()}, statuses=STATUSES
    )
    if found is None:
        return replies
    return await _reschedule(ctx, found[0].platform_id, when)


@router.answer("reschedule.pick_interview")
async def on_pick(ctx: Context) -> list[Reply]:
    platform_id, replies = await picked_interview(ctx)
    if platform_id is None:
        return replies
    assert ctx.pending is not None
    return await _reschedule(ctx, platform_id, datetime.fromisoformat(ctx.pending.params["at"]))


async def _reschedule(ctx: Context, platform_id: str, when: datetime) -> list[Reply]:
    try:
        result = await scheduling.reschedule(
            ctx.core, platform_id=platform_id, new_time=when, operator=ctx.actor, source="chat", chat=ctx.chat
        )
    except scheduling.RescheduleError as exc:
        return [Reply(exc.message)]
    text = ctx.core.templates.render(
        "chat/rescheduled.txt.j2",
        position=result.interview.position,
        start_text=local_text(result.interview.scheduled_at, ctx.core.settings.tz),
        reopened=result.reopened,
        **notices.notice_outcome(result.candidate, result.interview, ctx.core.settings, reader=ctx.actor),
    )
    return [Reply(text)]


async def _answer_help(ctx: Context, params: dict[str, object], when: datetime) -> list[Reply]:
    """A 求助 answered with a new time: end the current attempt (progress saved), then book the new one."""
    key, platform_id = str(params["key"]), str(params["platform_id"])
    if not await close_siblings(ctx.core, key, state="answered"):
        return [Reply("这条求助已被他人处理。")]
    async with ctx.core.sessions() as session:
        reasons = await repo.list_reasons(session)
        interview = await repo.get_interview(session, platform_id=platform_id)
    if interview is not None and interview.status == "in_progress":
        reason = match_reason(str(params.get("reason", "")), reasons)
        try:
            await termination.terminate(
                ctx.core,
                platform_id=platform_id,
                reason_text=reason.name if reason else HELP_FALLBACK_REASON,
                operator=ctx.actor,
                source="candidate_request",
                detail=str(params.get("reason", "")),
                chat=ctx.chat,
            )
        except termination.TerminationError as exc:
            return [Reply(exc.message)]
    return await _reschedule(ctx, platform_id, when)
