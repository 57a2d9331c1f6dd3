"""HR answers to a candidate's 求助: 确认终止 or 协助继续 (重新安排 lives in handlers/reschedule.py)."""

from __future__ import annotations

from bot.chat.messages import Reply
from bot.dispatcher import Context, Flow, Router, Step
from bot.language.intents import Kind
from bot.services import notices, prompts, reasons, termination
from bot.services.help_requests import HELP_ACTION, close_siblings
from bot.services.prompts import PendingAction
from bot.services.reasons import ExitReason, match_reason
from handlers.common import ask_reason, close_pending, names_reason, open_action, pick_number, picked_reason, say

router = Router("help_requests")

# The numbered question 确认终止 asks when the HR has several open help requests.
PICK_REQUEST = "help.pick_request"


async def open_help_request(ctx: Context) -> PendingAction | None:
    """The asker's newest open help request (from any chat), left open."""
    return await prompts.latest_open(ctx.core, requester=ctx.actor, chat_id=None, actions=[HELP_ACTION])


async def take_help_request(ctx: Context) -> PendingAction | None:
    """The asker's newest open help request (from any chat), closed for everyone at once."""
    action = await open_help_request(ctx)
    if action is None:
        return None
    if not await close_siblings(ctx.core, action.params["key"], state=prompts.ActionState.answered, by=ctx.actor):
        return None  # someone else answered in the meantime
    return action


@router.command("确认终止", kind=Kind.confirm_exit)
async def confirm_exit(ctx: Context) -> list[Reply]:
    """End the interview a candidate's 求助 is about. With several open requests the HR picks
    which one first (numbered, by candidate and position); with one it goes on at once."""
    waiting = await prompts.open_of(ctx.core, requester=ctx.actor, action=HELP_ACTION)
    if not waiting:
        return [say(ctx, "help_requests/none")]
    if len(waiting) == 1:
        return await _exit_for(ctx, waiting[0])
    await open_action(ctx, PICK_REQUEST, {"choices": [a.id for a in waiting]})
    shown = [
        {"name": a.params["candidate_name"], "position": a.params["position"], "reason": a.params.get("reason", "")}
        for a in waiting
    ]
    return [say(ctx, "help_requests/choices", choices=shown)]


async def on_pick_request(ctx: Context) -> list[Reply]:
    assert ctx.pending is not None
    picked: list[int] = ctx.pending.params.get("choices", [])
    index = pick_number(ctx.args, len(picked))
    if index is None:
        return [say(ctx, "pick/out_of_range", count=len(picked))]
    if not await close_pending(ctx):
        return [say(ctx, "pick/stale")]
    action = await prompts.latest_open(
        ctx.core, requester=ctx.actor, chat_id=None, actions=[HELP_ACTION], action_id=picked[index]
    )
    if action is None:  # answered by someone else (or expired) while the HR was picking
        return [say(ctx, "help_requests/taken")]
    return await _exit_for(ctx, action)


async def _exit_for(ctx: Context, action: PendingAction) -> list[Reply]:
    """End the interview of help request ``action`` with the reason the candidate's words name;
    when they name none, HR picks from the numbered list first (the request stays open
    meanwhile, so 取消 loses nothing)."""
    words = str(action.params.get("reason", ""))
    reason = match_reason(words, await reasons.active(ctx.core))
    if reason is None:
        head = ctx.core.templates.render("chat/help_requests/reason_head.txt.j2", words=words)
        params = {"key": action.params["key"], "platform_id": action.params["platform_id"]}
        return await ask_reason(ctx, then="help.pick_reason", params=params, head=head, detail=words)
    if not await close_siblings(ctx.core, action.params["key"], state=prompts.ActionState.answered, by=ctx.actor):
        return [say(ctx, "help_requests/none")]
    return await _end(ctx, action.params["platform_id"], reason, words)


async def on_pick_reason(ctx: Context) -> list[Reply]:
    assert ctx.pending is not None
    reason, detail, replies = await picked_reason(ctx)
    if reason is None:
        return replies
    if not await close_siblings(ctx.core, ctx.pending.params["key"], state=prompts.ActionState.answered, by=ctx.actor):
        return [say(ctx, "help_requests/taken")]
    return await _end(ctx, ctx.pending.params["platform_id"], reason, detail)


async def _end(ctx: Context, platform_id: str, reason: ExitReason, words: str) -> list[Reply]:
    result = await termination.terminate(
        ctx.core,
        platform_id=platform_id,
        reason_text=reason.code,
        operator=ctx.actor,
        source="candidate_request",
        detail=words,
        chat=ctx.chat,
    )
    text = ctx.core.templates.render(
        "chat/help_terminated.txt.j2",
        reason=result.exit.reason,
        outcome=result.candidate.pipeline_status,
        **result.reply_context(),
        **notices.notice_outcome(result.candidate, result.interview, ctx.core, reader=ctx.actor),
    )
    return [Reply(text)]


@router.command("协助继续", kind=Kind.assist)
async def assist(ctx: Context) -> list[Reply]:
    action = await take_help_request(ctx)
    if action is None:
        return [say(ctx, "help_requests/none")]
    detail = {"key": action.params["key"], "platform_id": action.params["platform_id"]}
    await prompts.audit(ctx.core, prompts.Audit(ctx.actor, "help.assist", chat=ctx.chat, detail=detail))
    return [say(ctx, "help_requests/assist", candidate_name=action.params["candidate_name"])]


# The conversation: 确认终止 → (which 求助, when several are open?) → (which reason, when the
# candidate's words name none?) → ended. 协助继续 and 重新安排 <时间> answer a 求助 in one step.
FLOW = router.flow(
    Flow(
        "help_requests",
        steps={
            PICK_REQUEST: Step(on_pick_request),
            "help.pick_reason": Step(on_pick_reason, claims=names_reason),
        },
    )
)
