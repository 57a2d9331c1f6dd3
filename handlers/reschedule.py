"""重新安排 <姓名|编号> <时间>, and 重新安排 <时间> as the answer to a candidate's 求助.

Every path states the time as understood in full (2027-01-05 周二 10:00) and asks 确认 before
anything changes, because the candidate is notified: (pick interview) → (ask the day, if only a
week was given) → (ask the hour, if only a day, or a day and a part of it, was given) →
confirmation → 确认 (handlers/terminate.py) / 取消. A time in the past is refused as past.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from bot.chat.messages import Reply
from bot.dispatcher import Confirm, Context, Flow, Router, Step
from bot.language.intents import CandidateRef, Kind
from bot.services import interviews, notices, prompts, reasons, scheduling, termination
from bot.services.dates import Understood, day_text, full_text, understand, week_text
from bot.services.help_requests import HELP_ACTION, close_siblings
from bot.services.interviews import Candidate, Interview, InterviewStatus
from bot.services.prompts import PendingAction
from bot.services.reasons import match_reason, shown_detail
from handlers.common import (
    ask_reason,
    close_pending,
    confirm_buttons,
    names_reason,
    one_at_a_time,
    open_action,
    picked_interview,
    picked_reason,
    reason_for,
    resolve_ref,
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
PICK_INTERVIEW = "reschedule.pick_interview"
ASK_HOUR = "reschedule.ask_hour"
ASK_DAY = "reschedule.ask_day"
ASK_TIME = "reschedule.ask_time"
# The same questions on the way to ending an interview in progress and booking it again.
COMPOUND_ASK_HOUR = "terminate_reschedule.ask_hour"
COMPOUND_ASK_DAY = "terminate_reschedule.ask_day"
# End an interview in progress and book it again: one confirmation, and the reason asked first.
COMPOUND_ACTION = "terminate_reschedule"
COMPOUND_REASON = "terminate_reschedule.pick_reason"
# Ended and booked again in one go: the termination notice waits this long, so the new time's
# notice replaces it and the candidate reads one notice that says both (a crash lets it go).
HOLD_FOR_NEW_TIME = 120


@router.command("重新安排", "改期", kind=Kind.reschedule)
async def ask_reschedule(ctx: Context) -> list[Reply]:
    core = ctx.core
    intent = ctx.intent
    help_request = await prompts.latest_open(core, requester=ctx.actor, chat_id=None, actions=[HELP_ACTION])
    if not intent.refs and not intent.time_text:
        if help_request is not None:  # the 求助 prompt's button: ask for the time
            return [say(ctx, "reschedule/ask_time")]
        return [usage_reply(ctx, inline=True)]
    understood = await _read_time(ctx, intent.time_text)
    if help_request is not None and not intent.refs and understood is not None:
        return await _with_time(ctx, str(help_request.params["platform_id"]), understood, help_request.params)
    if not intent.refs:
        return [usage_reply(ctx, inline=True)]
    refused = one_at_a_time(ctx, intent)
    if refused is not None:
        return [refused]
    if understood is None and (intent.time_text or intent.args or intent.words or not intent.refs[0].platform_ids):
        if intent.args:  # 往后推一天: from the time it is booked for
            return await _shifted(ctx, intent.refs[0], int(intent.args))
        assert ctx.cmd is not None
        return [say(ctx, "reschedule/unknown_time", words=intent.time_text or intent.words, example=ctx.cmd.example)]
    if understood is None:  # 改期 赵敏: to when?
        found, replies = await resolve_ref(
            ctx, intent.refs[0], then="", params={}, statuses=STATUSES, doing=LABELS["doing"]["reschedule"], pick=False
        )
        if found is None:
            return replies
        await open_action(ctx, ASK_TIME, {"platform_id": found[0].platform_id})
        return [say(ctx, "reschedule/ask_when", name=found[1].name, position=found[0].position)]
    return await _to_time(ctx, understood)


async def _to_time(ctx: Context, understood: Understood) -> list[Reply]:
    """The interview the request names, moved to ``understood``: one still running is ended first
    (one prompt names both steps, with the reason the words give or a question for it)."""
    intent = ctx.intent
    params = {**_time_params(understood), "reason_code": intent.reason_code or "", "words": intent.words}
    found, replies = await resolve_ref(
        ctx,
        intent.refs[0],
        then=PICK_INTERVIEW,
        params=params,
        statuses=(*STATUSES, InterviewStatus.in_progress.value),
        doing=LABELS["doing"]["reschedule"],
    )
    if found is None:
        return replies
    interview = found[0]
    if interview.status == InterviewStatus.in_progress.value:
        return await _compound(ctx, interview.platform_id, understood, intent.reason_code, intent.words)
    return await _with_time(ctx, interview.platform_id, understood)


@router.command(kind=Kind.terminate_reschedule)
async def ask_terminate_reschedule(ctx: Context) -> list[Reply]:
    """李明网络不好,改到明天下午三点重新面: end the interview in progress, then book it again."""
    intent = ctx.intent
    refused = one_at_a_time(ctx, intent)
    if refused is not None:
        return [refused]
    understood = await _read_time(ctx, intent.time_text)
    if not intent.refs or understood is None:
        return [say(ctx, "reschedule/compound_usage", words=intent.time_text)]
    return await _to_time(ctx, understood)  # one not started (or ended) is simply moved


async def _read_time(ctx: Context, text: str) -> Understood | None:
    """The time phrase of a request; a day named apart (明天的面试改到晚上8点 → 明天 晚上8点) joins
    the hour, unless together they make no sense (明天 后天下午3点: the later phrase alone)."""
    if not text:
        return None
    core = ctx.core
    understood = await understand(text, now=core.clock.now(), tz=core.settings.tz)
    if understood is None and " " in text:
        for piece in sorted(text.split(" "), key=len, reverse=True):
            understood = await understand(piece, now=core.clock.now(), tz=core.settings.tz)
            if understood is not None:
                break
    return understood


async def _compound(
    ctx: Context, platform_id: str, understood: Understood, reason_code: str | None, words: str
) -> list[Reply]:
    """A reason (asked for when the words name none), then the one prompt for both steps."""
    reason = await reason_for(ctx, reason_code, words)
    if reason is None:
        found = await interviews.get_with_candidate(ctx.core, platform_id)
        name = found[1].name if found is not None else ""
        head = ctx.core.templates.render("chat/reschedule/compound_reason_head.txt.j2", words=words, name=name)
        asked = {"platform_id": platform_id, **_time_params(understood)}
        return await ask_reason(ctx, then=COMPOUND_REASON, params=asked, head=head, detail=words)
    return await _with_time(ctx, platform_id, understood, compound={"reason": reason.code, "detail": words})


async def on_compound_reason(ctx: Context) -> list[Reply]:
    assert ctx.pending is not None
    reason, detail, replies = await picked_reason(ctx)
    if reason is None:
        return replies
    params = ctx.pending.params
    return await _compound(ctx, params["platform_id"], _from_params(params), reason.code, detail)


def _time_params(understood: Understood) -> dict[str, str]:
    if understood.at is not None:
        return {"at": understood.at.isoformat()}
    if understood.week_of is not None:
        return {"week": understood.week_of.isoformat()}
    assert understood.day is not None
    params = {"day": understood.day.isoformat()}
    if understood.part:
        params["part"] = understood.part
    return params


def _from_params(params: dict[str, Any]) -> Understood:
    if params.get("at"):
        return Understood(at=datetime.fromisoformat(params["at"]))
    if params.get("week"):
        return Understood(week_of=date.fromisoformat(params["week"]))
    return Understood(day=date.fromisoformat(params["day"]), part=params.get("part"))


async def on_pick(ctx: Context) -> list[Reply]:
    platform_id, replies = await picked_interview(ctx)
    if platform_id is None:
        return replies
    assert ctx.pending is not None
    params = ctx.pending.params
    found = await interviews.get_with_candidate(ctx.core, platform_id)
    if found is not None and found[0].status == InterviewStatus.in_progress.value:
        words = str(params.get("words", ""))
        return await _compound(ctx, platform_id, _from_params(params), params.get("reason_code") or None, words)
    return await _with_time(ctx, platform_id, _from_params(params))


async def _with_time(
    ctx: Context,
    platform_id: str,
    understood: Understood,
    help_params: dict[str, Any] | None = None,
    *,
    compound: dict[str, Any] | None = None,
) -> list[Reply]:
    """A time to confirm, or the question for what is missing: the day of a week, the hour of a day
    (``compound``, the termination that comes first, travels with the question)."""
    if understood.at is not None:
        return await _prompt(ctx, platform_id, understood.at, help_params, compound=compound)
    today = ctx.core.clock.now().astimezone(ctx.core.settings.tz).date()
    if understood.week_of is not None:
        week = understood.week_of
        if week + timedelta(days=6) < today:
            return [say(ctx, "reschedule/past", when=week_text(week))]
        asked = {"platform_id": platform_id, "week": week.isoformat(), "help": help_params, "compound": compound}
        await open_action(ctx, ASK_DAY if compound is None else COMPOUND_ASK_DAY, asked)
        return [say(ctx, "reschedule/ask_day", week=week_text(week))]
    assert understood.day is not None
    if understood.day < today:
        return [say(ctx, "reschedule/past", when=day_text(understood.day))]
    params = {"platform_id": platform_id, "day": understood.day.isoformat(), "part": understood.part}
    asked = {**params, "help": help_params, "compound": compound}
    await open_action(ctx, ASK_HOUR if compound is None else COMPOUND_ASK_HOUR, asked)
    return [say(ctx, "reschedule/ask_hour", day=day_text(understood.day), part=understood.part)]


async def on_day(ctx: Context) -> list[Reply]:
    assert ctx.pending is not None
    params = ctx.pending.params
    week = date.fromisoformat(params["week"])
    core = ctx.core
    understood = await understand(ctx.args, now=core.clock.now(), tz=core.settings.tz, week_of=week)
    if understood is None or understood.week_of is not None:
        return [say(ctx, "reschedule/unknown_day", words=ctx.args, week=week_text(week))]
    if not await close_pending(ctx):
        return [say(ctx, "reschedule/stale")]
    return await _with_time(ctx, params["platform_id"], understood, params.get("help"), compound=params.get("compound"))


async def on_time(ctx: Context) -> list[Reply]:
    """The answer to 改到什么时候?: a time, a day or a week (what is missing is asked next)."""
    assert ctx.pending is not None
    core = ctx.core
    understood = await understand(ctx.args, now=core.clock.now(), tz=core.settings.tz)
    if understood is None:
        return [say(ctx, "reschedule/unknown_time", words=ctx.args, example=LABELS["command_example"]["重新安排"])]
    if not await close_pending(ctx):
        return [say(ctx, "reschedule/stale")]
    return await _with_time(ctx, ctx.pending.params["platform_id"], understood)


async def _shifted(ctx: Context, ref: CandidateRef, seconds: int) -> list[Reply]:
    """往后推一天, 提前半小时: the booked time moved by that much, then the usual prompt."""
    found, replies = await resolve_ref(
        ctx, ref, then="", params={}, statuses=STATUSES, doing=LABELS["doing"]["reschedule"], pick=False
    )
    if found is None:
        return replies
    interview = found[0]
    if interview.scheduled_at is None:
        return [say(ctx, "reschedule/unknown_time", words="", example=LABELS["command_example"]["重新安排"])]
    return await _prompt(ctx, interview.platform_id, interview.scheduled_at + timedelta(seconds=seconds), None)


async def on_hour(ctx: Context) -> list[Reply]:
    assert ctx.pending is not None
    params = ctx.pending.params
    day, part = date.fromisoformat(params["day"]), params.get("part")
    core = ctx.core
    understood = await understand(ctx.args, now=core.clock.now(), tz=core.settings.tz, on_day=day, part=part)
    if understood is None or understood.at is None:
        return [say(ctx, "reschedule/unknown_hour", words=ctx.args, day=day_text(day), part=part)]
    if not await close_pending(ctx):
        return [say(ctx, "reschedule/stale")]
    return await _prompt(ctx, params["platform_id"], understood.at, params.get("help"), compound=params.get("compound"))


async def _prompt(
    ctx: Context,
    platform_id: str,
    when: datetime,
    help_params: dict[str, Any] | None,
    *,
    compound: dict[str, Any] | None = None,
) -> list[Reply]:
    """State the time understood in full and ask 确认: the candidate is told once it is done.
    With ``compound`` (a reason code and the words typed) the interview in progress is ended
    first, and the one prompt names both steps."""
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
    if compound is None and help_params and interview.status == InterviewStatus.in_progress.value:
        # A 求助 answered with a time while the interview runs: the same one prompt for both steps.
        words = str(help_params.get("reason", ""))
        named = match_reason(words, await reasons.active(core))
        compound = {"reason": named.code if named else HELP_FALLBACK_REASON, "detail": words, "help": help_params}
    if compound is not None:
        return await _prompt_compound(ctx, interview, candidate, when, compound, requested)
    params = {"platform_id": platform_id, "at": when.isoformat(), "help": help_params}
    action = await open_action(ctx, CONFIRM_ACTION, params, audit=requested)
    text = core.templates.render(
        "chat/confirm_reschedule.txt.j2",
        candidate_name=candidate.name,
        position=interview.position,
        start_text=full_text(when, tz),
        previous_text=full_text(interview.scheduled_at, tz) if interview.scheduled_at else "",
        ends_current=bool(help_params) and interview.status == "in_progress",
        platform_connected=core.platform is not None,
        ttl_minutes=max(1, core.settings.confirm_ttl_seconds // 60),
    )
    buttons = confirm_buttons(action, LABELS["button"]["reschedule"])
    return [Reply(text, kind="confirm", title=LABELS["reply_title"]["reschedule"], buttons=buttons)]


async def _prompt_compound(
    ctx: Context,
    interview: Interview,
    candidate: Candidate,
    when: datetime,
    compound: dict[str, Any],
    requested: prompts.Audit,
) -> list[Reply]:
    core = ctx.core
    offered = await reasons.active(core)
    reason = next((r for r in offered if r.code == compound["reason"]), None)
    if reason is None:  # renamed away while the question waited: ask again
        return await _compound(ctx, interview.platform_id, Understood(at=when), None, compound.get("detail", ""))
    detail = compound.get("detail", "")
    params = {
        "platform_id": interview.platform_id,
        "at": when.isoformat(),
        "reason": reason.code,
        "detail": detail,
        "help": compound.get("help"),
    }
    requested = prompts.Audit(
        requested.actor,
        "terminate_reschedule.requested",
        chat=requested.chat,
        interview_id=requested.interview_id,
        detail={**requested.detail, "reason_code": reason.code, "detail": detail},
    )
    action = await open_action(ctx, COMPOUND_ACTION, params, audit=requested)
    text = core.templates.render(
        "chat/confirm_terminate_reschedule.txt.j2",
        candidate_name=candidate.name,
        position=interview.position,
        answered=interview.answered_count,
        reason=reason.name,
        detail=shown_detail(detail, name=reason.name, code=reason.code),
        start_text=full_text(when, core.settings.tz),
        ttl_minutes=max(1, core.settings.confirm_ttl_seconds // 60),
        platform_connected=core.platform is not None,
    )
    title = LABELS["reply_title"]["terminate_reschedule"]
    buttons = confirm_buttons(action, LABELS["button"]["terminate_reschedule"])
    return [Reply(text, kind="confirm", title=title, buttons=buttons)]


async def _compound_confirmed(ctx: Context, action: PendingAction) -> list[Reply]:
    """End the interview in progress (progress saved, exit record with the reason), then book the
    new time; a termination already done by an earlier try of this 确认 is not repeated."""
    params = action.params
    if params.get("help"):  # a 求助 answered with a time: closed for everyone, ended as the candidate asked
        return await _answer_help(ctx, params["help"], datetime.fromisoformat(params["at"]))
    found = await interviews.get_with_candidate(ctx.core, params["platform_id"])
    if found is not None and found[0].status == InterviewStatus.in_progress.value:
        await termination.terminate(
            ctx.core,
            platform_id=params["platform_id"],
            reason_text=params["reason"],
            operator=ctx.actor,
            source="chat",
            detail=params.get("detail", ""),
            chat=ctx.chat,
            hold_notice_seconds=HOLD_FOR_NEW_TIME,
        )
    return await _reschedule(ctx, params["platform_id"], datetime.fromisoformat(params["at"]))


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
    if not await close_siblings(ctx.core, key, state=prompts.ActionState.answered, by=ctx.actor):
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
            hold_notice_seconds=HOLD_FOR_NEW_TIME,
        )
    return await _reschedule(ctx, platform_id, when)


# The conversations: 重新安排 <who> <when> → (which interview?) → (which day? / what hour? / when?)
# → 确认 / 取消; for an interview in progress, (which reason?) → one prompt that ends it and books
# it again. A 求助 answered with a time ends in the same 确认.
FLOW = router.flow(
    Flow(
        "reschedule",
        steps={
            PICK_INTERVIEW: Step(on_pick),
            ASK_TIME: Step(on_time),
            ASK_DAY: Step(on_day),
            ASK_HOUR: Step(on_hour),
            COMPOUND_REASON: Step(on_compound_reason, claims=names_reason),
            COMPOUND_ASK_DAY: Step(on_day),
            COMPOUND_ASK_HOUR: Step(on_hour),
        },
        confirms={
            CONFIRM_ACTION: Confirm(_confirmed, again=_confirmed_again),
            COMPOUND_ACTION: Confirm(_compound_confirmed),
        },
    )
)
