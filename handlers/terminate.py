"""终止面试 <姓名|编号> [原因] → (pick interview) → (pick reason) → confirmation → 确认 / 取消."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from bot.chat.messages import Reply, prompt_ref
from bot.dispatcher import Confirm, Context, Flow, Router, Step
from bot.language.intents import Kind
from bot.services import interviews, notices, prompts, reasons, termination
from bot.services.dates import full_text
from bot.services.prompts import PendingAction
from bot.services.reasons import ExitReason, match_reason, shown_detail
from handlers.common import (
    ask_reason,
    confirm_buttons,
    local,
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

router = Router("terminate")


@router.command("终止面试", "结束面试", "停止面试", "终止", kind=Kind.terminate)
async def ask_terminate(ctx: Context) -> list[Reply]:
    intent = ctx.intent
    if not intent.refs:
        return [usage_reply(ctx)]
    refused = one_at_a_time(ctx, intent)
    if refused is not None:
        return [refused]
    params = {"reason_code": intent.reason_code or "", "words": intent.words}
    found, replies = await resolve_ref(
        ctx, intent.refs[0], then="terminate.pick_interview", params=params, doing=LABELS["doing"]["terminate"]
    )
    if found is None:
        return replies
    return await _with_interview(ctx, found[0].platform_id, intent.reason_code, intent.words)


async def on_pick_interview(ctx: Context) -> list[Reply]:
    platform_id, replies = await picked_interview(ctx)
    if platform_id is None:
        return replies
    assert ctx.pending is not None
    params = ctx.pending.params
    words = str(params.get("words", params.get("reason", "")))
    return await _with_interview(ctx, platform_id, params.get("reason_code") or None, words)


async def _with_interview(ctx: Context, platform_id: str, reason_code: str | None, words: str) -> list[Reply]:
    reason = await reason_for(ctx, reason_code, words)
    if reason is None:
        head = ctx.core.templates.render("chat/terminate/reason_head.txt.j2", words=words)
        params = {"platform_id": platform_id}
        return await ask_reason(ctx, then="terminate.pick_reason", params=params, head=head, detail=words)
    return await _prompt(ctx, platform_id, reason, words)


async def on_pick_reason(ctx: Context) -> list[Reply]:
    assert ctx.pending is not None
    reason, detail, replies = await picked_reason(ctx)
    if reason is None:
        return replies
    return await _prompt(ctx, ctx.pending.params["platform_id"], reason, detail)


async def _prompt(ctx: Context, platform_id: str, reason: ExitReason, detail: str) -> list[Reply]:
    core = ctx.core
    found = await interviews.get_with_candidate(core, platform_id)
    if found is None:
        return [say(ctx, "interview_not_found", platform_id=platform_id)]
    interview, candidate = found
    requested = prompts.Audit(
        ctx.actor,
        "terminate.requested",
        chat=ctx.chat,
        interview_id=interview.id,
        detail={"reason": reason.name, "reason_code": reason.code, "detail": detail},
    )
    # The reason goes by its code (admins may rename reasons while the prompt waits).
    params = {"platform_id": platform_id, "reason": reason.code, "detail": detail}
    action = await open_action(ctx, "terminate", params, audit=requested)
    ttl = core.settings.confirm_ttl_seconds
    text = core.templates.render(
        "chat/confirm_terminate.txt.j2",
        candidate_name=candidate.name,
        position=interview.position,
        answered=interview.answered_count,
        when=local(ctx, interview.started_at or interview.scheduled_at),
        started=interview.started_at is not None,
        reason=reason.name,
        outcome=reason.outcome,
        detail=shown_detail(detail, name=reason.name, code=reason.code),
        ttl_minutes=max(1, ttl // 60),
        platform_connected=ctx.core.platform is not None,
    )
    buttons = confirm_buttons(action, LABELS["button"]["terminate"])
    return [Reply(text, kind="confirm", title=LABELS["reply_title"]["terminate"], buttons=buttons)]


async def _take(ctx: Context, actions: list[str], state: prompts.ActionState) -> PendingAction | None:
    """Close the asker's prompt named by its id (a button press: ``确认 #123``), else their newest
    open prompt of these kinds in this chat, once."""
    return await prompts.take(
        ctx.core,
        requester=ctx.actor,
        chat_id=ctx.msg.chat_id,
        actions=actions,
        state=state,
        action_id=prompt_ref(ctx.args),
        by=_message_key(ctx),
    )


def _message_key(ctx: Context) -> str:
    return f"{ctx.msg.platform}:{ctx.msg.msg_id}"[:300]


@router.command("确认", kind=Kind.confirm)
async def confirm(ctx: Context) -> list[Reply]:
    dispatcher = ctx.dispatcher
    assert dispatcher is not None
    action = await _take(ctx, list(dispatcher.confirms), prompts.ActionState.confirmed)
    if action is None:
        return await _confirmed_before(ctx)
    return await dispatcher.confirms[action.action].handler(ctx, action)


async def _confirmed_before(ctx: Context) -> list[Reply]:
    """This very 确认 is processed again (its first processing was cut off by a crash): a
    termination is asked for again (it is guarded: it resumes, or says it is done or under way);
    any other confirmation is not repeated, and the sender is told to check its result.
    Otherwise a press naming its prompt (``确认 #123``) is told why that prompt is not open."""
    earlier = await prompts.closed_by(ctx.core, requester=ctx.actor, by=_message_key(ctx))
    if earlier is None or earlier.state != prompts.ActionState.confirmed.value:
        return await _not_open(ctx, "confirm")
    assert ctx.dispatcher is not None
    confirm = ctx.dispatcher.confirms.get(earlier.action)
    again = confirm.again if confirm is not None else None
    if again is not None:
        return await again(ctx, earlier)
    return [say(ctx, "terminate/confirmed_before", action=earlier.action)]


async def _not_open(ctx: Context, pressed: Literal["confirm", "cancel"]) -> list[Reply]:
    """Why the prompt a press names (``确认 #123`` / ``取消 #123``) cannot be answered: expired,
    confirmed before (what it was; it is not repeated), cancelled, or not the presser's. Nothing
    changes. A bare 确认 / 取消 with nothing open is told there is nothing."""
    nothing = "terminate/nothing_to_confirm" if pressed == "confirm" else "terminate/nothing_to_cancel"
    action_id = prompt_ref(ctx.args)
    if action_id is None:
        return [say(ctx, nothing)]
    view = await prompts.read(ctx.core, action_id, requester=ctx.actor, chat_id=ctx.msg.chat_id)
    if view.status == "not_yours":
        return [say(ctx, "terminate/not_yours")]
    if view.status == "expired":
        return [say(ctx, "terminate/expired", minutes=view.ttl_minutes)]
    if view.status == "cancelled":
        return [say(ctx, "terminate/already_cancelled", pressed=pressed)]
    if view.status == "confirmed" and view.action is not None:
        what = await _what(ctx, view.action)
        return [say(ctx, "terminate/already_confirmed", pressed=pressed, action=view.action.action, **what)]
    if view.status == "closed":
        return [say(ctx, "terminate/already_closed")]
    return [say(ctx, nothing)]


async def _what(ctx: Context, action: PendingAction) -> dict[str, str]:
    """What a confirmed prompt was about, for telling its requester: the candidate and position,
    the reason (by its current name), the new time."""
    params = action.params
    what = {"candidate_name": "", "position": "", "reason": "", "when": ""}
    found = await interviews.get_with_candidate(ctx.core, str(params.get("platform_id", "")))
    if found is not None:
        what["candidate_name"], what["position"] = found[1].name, found[0].position
    if params.get("reason"):
        reason = match_reason(str(params["reason"]), await reasons.active(ctx.core))
        what["reason"] = reason.name if reason is not None else str(params["reason"])
    if params.get("at"):
        what["when"] = full_text(datetime.fromisoformat(str(params["at"])), ctx.core.settings.tz)
    return what


async def _terminate_confirmed(ctx: Context, action: PendingAction) -> list[Reply]:
    params = action.params
    result = await termination.terminate(
        ctx.core,
        platform_id=params["platform_id"],
        reason_text=params["reason"],
        operator=ctx.actor,
        source=params.get("source", "chat"),
        detail=params.get("detail", ""),
        chat=ctx.chat,
    )
    text = ctx.core.templates.render(
        "chat/terminated.txt.j2",
        position=result.interview.position,
        reason=result.exit.reason,
        outcome=result.candidate.pipeline_status,
        **result.reply_context(),
        **notices.notice_outcome(result.candidate, result.interview, ctx.core, reader=ctx.actor),
    )
    return [Reply(text)]


@router.command("取消", kind=Kind.cancel)
async def cancel(ctx: Context) -> list[Reply]:
    dispatcher = ctx.dispatcher
    assert dispatcher is not None
    action = await prompts.cancel(
        ctx.core,
        requester=ctx.actor,
        chat_id=ctx.msg.chat_id,
        actions=[*dispatcher.confirms, *dispatcher.answers],
        chat=ctx.chat,
        action_id=prompt_ref(ctx.args),
    )
    if action is None:
        return await _not_open(ctx, "cancel")
    return [say(ctx, "terminate/cancelled", action=action.action)]


# The conversation: 终止面试 <who> [why] → (which interview?) → (which reason?) → 确认 / 取消.
FLOW = router.flow(
    Flow(
        "terminate",
        steps={
            "terminate.pick_interview": Step(on_pick_interview),
            "terminate.pick_reason": Step(on_pick_reason, claims=names_reason),
        },
        # Termination is guarded: asked again by the same 确认, it resumes, or says it is done or under way.
        confirms={"terminate": Confirm(_terminate_confirmed, again=_terminate_confirmed)},
    )
)
