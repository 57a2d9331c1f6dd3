"""重新安排 <姓名|编号> <时间>, and 重新安排 <时间> as the answer to a candidate's 求助.

Every path states the time as understood in full (2027-01-05 周二 10:00) and asks 确认 before
anything changes, because the candidate is notified: (pick interview) → (ask the hour, if only
a day was given) → confirmation → 确认 (handlers/terminate.py) / 取消.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from bot.chat.messages import Reply
from bot.dispatcher import Context, Router
from bot.services import interviews, notices, prompts, reasons, scheduling, termination
from bot.services.dates import Understood, day_text, full_text, understand
from bot.services.help_requests import HELP_ACTION, close_siblings
from bot.services.interviews import Candidate, Interview, InterviewStatus
from bot.services.prompts import PendingAction
from bot.services.reasons import match_reason
from handlers.common import (
    close_pending,
    confirm_buttons,
    on_confirm,
    open_action,
    picked_interview,
    resolve_one,
    say,
    usage_reply,
)
from templates.labels import LABELS

router = Router("reschedule")

# Reschedulable: not started yet, or ended early.
STATUSES = ("scheduled", "terminated")
# When rescheduling answers a 求助 whose reason is not recognised.
HELP_FALLBACK_REASON = "process_change"  # a reason code: admins may rename the reason
# Open prompts: the confirmation (answered by 确认 / 取消) and the question for the hour.
CONFIRM_ACTION = "reschedule"
ASK_HOUR = "reschedule.ask_hour"


@router.command("重新安排", "改期")
async def ask_reschedule(ctx: Context) -> list[Reply]:
    core = ctx.core
    now = core.clock.now()
    help_request = await prompts.latest_open(core, requester=ctx.actor, chat_id=None, actions=[HELP_ACTION])
    if not ctx.args:
        if help_request is not None:  # the 求助 prompt's button: ask for the time
            return [say(ctx, "reschedule/ask_time")]
        return [usage_reply(ctx, inline=True)]
    if help_request is not None:
        understood = await understand(ctx.args, now=now, tz=core.settings.tz)
        if understood is not None:
            return await _with_time(ctx, str(help_request.params["platform_id"]), understood, help_request.params)
    who, _, time_text = ctx.args.partition(" ")
    understood = await understand(time_text, now=now, tz=core.settings.tz) if time_text else None
    if understood is None:
        assert ctx.cmd is not None
        return [say(ctx, "reschedule/unknown_time", words=time_text, example=ctx.cmd.example)]
    found, replies = await resolve_one(
        ctx, who, then="reschedule.pick_interview", params=_time_params(understood), statuses=STATUSES
    )
    if found is None:
        return replies
    return await _with_time(ctx, found[0].platform_id, understood)


def _time_params(understood: Understood) -> dict[str, str]:
    if understood.at is not None:
        return {"at": understood.at.isoformat()}
    assert understood.day is not None
    return {"day": understood.day.isoformat()}


def _from_params(params: dict[str, Any]) -> Understood:
    if params.get("at"):
        return Understood(at=datetime.fromisoformat(params["at"]))
    return Understood(day=date.fromisoformat(params["day"]))


@router.answer("reschedule.pick_interview")
async def on_pick(ctx: Context) -> list[Reply]:
    platform_id, replies = await picked_interview(ctx)
    if platform_id is None:
        return replies
    assert ctx.pending is not None
    return await _with_time(ctx, platform_id, _from_params(ctx.pending.params))


async def _with_time(
    ctx: Context, platform_id: str, understood: Understood, help_params: dict[str, Any] | None = None
) -> list[Reply]:
    """A time to confirm, or (a day without an hour) the question for the hour."""
    if understood.at is not None:
        return await _prompt(ctx, platform_id, understood.at, help_params)
    assert understood.day is not None
    today = ctx.core.clock.now().astimezone(ctx.core.settings.tz).date()
    if understood.day < today:
        return [say(ctx, "reschedule/past", when=day_text(understood.day))]
    params = {"platform_id": platform_id, "day": understood.day.isoformat(), "help": help_params}
    await open_action(ctx, ASK_HOUR, params)
    return [say(ctx, "reschedule/ask_hour", day=day_text(understood.day))]


@router.answer(ASK_HOUR)
async def on_hour(ctx: Context) -> list[Reply]:
    assert ctx.pending is not None
    params = ctx.pending.params
    day = date.fromisoformat(params["day"])
    core = ctx.core
    understood = await understand(ctx.args, now=core.clock.now(), tz=core.settings.tz, on_day=day)
    if understood is None or understood.at is None:
        return [say(ctx, "reschedule/unknown_hour", words=ctx.args, day=day_text(day))]
    if not await close_pending(ctx):
        return [say(ctx, "reschedule/stale")]
    return await _prompt(ctx, params["platform_id"], understood.at, params.get("help"))


async def _prompt(ctx: Context, platform_id: str, when: datetime, help_params: dict[str, Any] | None) -> list[Reply]:
    """State the time understood in full and ask 确认: the candidate is told once it is done."""
    core = ctx.core
    tz = core.settings.tz
    if when <= core.clock.now():
        return [say(ctx, "reschedule/past", when=full_text(when, tz))]
    found = await interviews.get_with_candidate(core, platform_id)
    if found is None:
        return [say(ctx, "interview_not_found", platform_id=platform_id)]
    interview, candidate = found
    requested = prompts.Audit(
        ctx.actor,
        "reschedule.requested",
        chat=ctx.chat,
        interview_id=interview.id,
        detail={"at": when.isoformat(), "help": bool(help_params)},
    )
    params = {"platform_id": platform_id, "at": when.isoformat(), "help": help_params}
    action = await open_action(ctx, CONFIRM_ACTION, params, audit=requested)
    text = core.templates.render(
        "chat/confirm_reschedule.txt.j2",
        candidate_name=candidate.name,
        position=interview.position,
        start_text=full_text(when, tz),
        previous_text=full_text(interview.scheduled_at, tz) if interview.scheduled_at else "",
        ends_current=bool(help_params) and interview.status == "in_progress",
        ttl_minutes=max(1, core.settings.confirm_ttl_seconds // 60),
    )
    buttons = confirm_buttons(action, LABELS["button"]["reschedule"])
    return [Reply(text, kind="confirm", title=LABELS["reply_title"]["reschedule"], buttons=buttons)]


async def _confirmed_again(ctx: Context, action: PendingAction) -> list[Reply]:
    """The same 确认 processed again after a crash: a reschedule already made is reported, one
    that never happened is made now; a 求助 answered with a time is not repeated (its result is
    for the HR to check)."""
    params = action.params
    if params.get("help"):
        return [say(ctx, "terminate/confirmed_before", action=action.action)]
    when = datetime.fromisoformat(params["at"])
    found = await interviews.get_with_candidate(ctx.core, params["platform_id"])
    if found is not None and found[0].scheduled_at == when and found[0].status == InterviewStatus.scheduled.value:
        interview, candidate = found
        return [_rescheduled_reply(ctx, interview, candidate, when, reopened=False)]
    return await _reschedule(ctx, params["platform_id"], when)


@on_confirm(CONFIRM_ACTION, again=_confirmed_again)
async def _confirmed(ctx: Context, action: PendingAction) -> list[Reply]:
    params = action.params
    when = datetime.fromisoformat(params["at"])
    if params.get("help"):
        return await _answer_help(ctx, params["help"], when)
    return await _reschedule(ctx, params["platform_id"], when)


async def _reschedule(ctx: Context, platform_id: str, when: datetime) -> list[Reply]:
    result = await scheduling.reschedule(
        ctx.core, platform_id=platform_id, new_time=when, operator=ctx.actor, source="chat", chat=ctx.chat
    )
    return [_rescheduled_reply(ctx, result.interview, result.candidate, when, reopened=result.reopened)]


def _rescheduled_reply(
    ctx: Context, interview: Interview, candidate: Candidate, when: datetime, *, reopened: bool
) -> Reply:
    text = ctx.core.templates.render(
        "chat/rescheduled.txt.j2",
        position=interview.position,
        start_text=full_text(when, ctx.core.settings.tz),
        reopened=reopened,
        **notices.notice_outcome(candidate, interview, ctx.core, reader=ctx.actor),
    )
    return Reply(text)


async def _answer_help(ctx: Context, params: dict[str, object], when: datetime) -> list[Reply]:
    """A 求助 answered with a new time: end the current attempt (progress saved), then book the new one."""
    key, platform_id = str(params["key"]), str(params["platform_id"])
    if not await close_siblings(ctx.core, key, state=prompts.ActionState.answered):
        return [say(ctx, "help_requests/taken")]
    found = await interviews.get_with_candidate(ctx.core, platform_id)
    if found is not None and found[0].status == "in_progress":
        reason = match_reason(str(params.get("reason", "")), await reasons.active(ctx.core))
        await termination.terminate(
            ctx.core,
            platform_id=platform_id,
            reason_text=reason.code if reason else HELP_FALLBACK_REASON,
            operator=ctx.actor,
            source="candidate_request",
            detail=str(params.get("reason", "")),
            chat=ctx.chat,
        )
    return await _reschedule(ctx, platform_id, when)
