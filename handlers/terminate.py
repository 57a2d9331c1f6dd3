"""终止面试 <姓名|编号> <原因> → confirmation → 确认 / 取消."""

from __future__ import annotations

from datetime import timedelta

from bot.channels.base import Reply
from bot.dispatcher import MANAGERS, Context, Router
from bot.services import termination
from bot.services.reasons import match_reason
from storage import repo
from storage.models import PendingAction

router = Router("terminate")

TERMINATE_USAGE = "终止面试 <姓名或面试编号> <原因>"
CONFIRM_BUTTONS = (("确认终止", "确认"), ("取消", "取消"))


@router.command("终止面试", "结束面试", "停止面试", "终止", usage=TERMINATE_USAGE, example="终止面试 张三 候选人放弃")
async def ask_terminate(ctx: Context) -> list[Reply]:
    who, _, reason_text = ctx.args.partition(" ")
    core = ctx.core
    async with core.sessions() as session:
        reasons = await repo.list_reasons(session)
        if not who:
            return [Reply(f"用法:{TERMINATE_USAGE}\n可选原因:{'、'.join(r.name for r in reasons)}")]
        scope = None if ctx.person and ctx.person.role in MANAGERS else ctx.actor
        matches = await repo.open_interviews_matching(session, query=who, hr_key=scope)
    if not matches:
        return [Reply(f"没有找到你负责的、未结束的「{who}」的面试。")]
    if len(matches) > 1:
        lines = [f"有 {len(matches)} 场「{who}」的面试,请用面试编号指定:"]
        for interview, candidate in matches:
            when = (
                interview.scheduled_at.astimezone(core.settings.tz).strftime("%m-%d %H:%M")
                if interview.scheduled_at
                else "未排期"
            )
            tail = (candidate.mobile or "")[-4:] or "----"
            lines.append(f"· {interview.platform_id}  {interview.position}  {when}  尾号{tail}")
        return [Reply("\n".join(lines))]
    reason = match_reason(reason_text, reasons) if reason_text else None
    if reason is None:
        prefix = f"无法识别原因「{reason_text}」。" if reason_text else "请说明原因。"
        return [Reply(f"{prefix}可选:{'、'.join(r.name for r in reasons)}\n例如:终止面试 {who} {reasons[0].name}")]
    interview, candidate = matches[0]
    now = core.clock.now()
    ttl = core.settings.confirm_ttl_seconds
    async with core.sessions() as session:
        action = PendingAction(
            requester=ctx.actor,
            chat_id=ctx.msg.chat_id,
            action="terminate",
            params={"platform_id": interview.platform_id, "reason": reason.name, "detail": reason_text},
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
        session.add(action)
        repo.audit(
            session,
            at=now,
            actor=ctx.actor,
            action="terminate.requested",
            interview_id=interview.id,
            chat=ctx.chat,
            detail={"reason": reason.name},
        )
        await session.commit()
    text = core.templates.render(
        "chat/confirm_terminate.txt.j2",
        candidate_name=candidate.name,
        position=interview.position,
        answered=interview.answered_count,
        reason=reason.name,
        outcome=reason.outcome,
        ttl_minutes=max(1, ttl // 60),
    )
    return [Reply(text, kind="confirm", title="确认终止面试", buttons=CONFIRM_BUTTONS)]


async def _take_action(ctx: Context, state: str) -> PendingAction | None:
    now = ctx.core.clock.now()
    action_id = int(ctx.args) if ctx.args.isdigit() else None
    async with ctx.core.sessions() as session:
        action = await repo.latest_open_action(
            session, requester=ctx.actor, chat_id=ctx.msg.chat_id, now=now, action_id=action_id
        )
        if action is None or action.id is None:
            return None
        if not await repo.close_action(session, action_id=action.id, state=state, now=now):
            return None
        return action


@router.command("确认", usage="确认", example="确认")
async def confirm(ctx: Context) -> list[Reply]:
    action = await _take_action(ctx, "confirmed")
    if action is None:
        return [Reply("没有等待你确认的操作(可能已超时、已处理或不是你发起的)。")]
    params = action.params
    try:
        result = await termination.terminate(
            ctx.core,
            platform_id=params["platform_id"],
            reason_text=params["reason"],
            operator=ctx.actor,
            source="chat",
            detail=params.get("detail", ""),
            chat=ctx.chat,
        )
    except termination.TerminationError as exc:
        return [Reply(exc.message)]
    text = ctx.core.templates.render(
        "chat/terminated.txt.j2",
        candidate_name=result.candidate.name,
        position=result.interview.position,
        reason=result.exit.reason,
        outcome=result.candidate.pipeline_status,
        answered=len(result.exit.progress_snapshot.get("answered", [])),
        notice_channel=result.notice.channel,
    )
    return [Reply(text)]


@router.command("取消", usage="取消", example="取消")
async def cancel(ctx: Context) -> list[Reply]:
    action = await _take_action(ctx, "cancelled")
    if action is None:
        return [Reply("没有可以取消的操作。")]
    async with ctx.core.sessions() as session:
        repo.audit(
            session,
            at=ctx.core.clock.now(),
            actor=ctx.actor,
            action="terminate.cancelled",
            chat=ctx.chat,
            detail=action.params,
        )
        await session.commit()
    return [Reply("已取消,面试继续进行。")]
