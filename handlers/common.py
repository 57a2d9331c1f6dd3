"""Helpers shared by handlers: who may see what, interview lookup, numbered picks, formatting."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.chat.messages import Button, Reply, pressed
from bot.dispatcher import MANAGERS, Context
from bot.language.intents import CandidateRef, Intent
from bot.language.parse import Known, pick_by_words
from bot.services import events, interviews, prompts, reasons
from bot.services.interviews import OPEN, Candidate, Interview
from bot.services.prompts import PendingAction
from bot.services.reasons import ExitReason, match_reason
from templates.labels import LABELS

STATUS_LABELS = LABELS["interview_status"]
# Between the items of an inline list (user ids, periods).
LIST_SEP = LABELS["chat"]["list_separator"]


def confirm_buttons(action: PendingAction, confirm_label: str) -> tuple[Button, ...]:
    """The two buttons of confirmation prompt ``action``, each tied to it (``确认 #123`` /
    ``取消 #123``): a press answers this prompt and no other, and a late one is told why not."""
    assert action.id is not None, "buttons are built for a stored prompt"
    return ((confirm_label, pressed("确认", action.id)), (LABELS["button"]["cancel"], pressed("取消", action.id)))


def scope_of(ctx: Context) -> str | None:
    """None for managers and admins (all interviews); the HR's own key otherwise."""
    return None if ctx.person is not None and ctx.person.role in MANAGERS else ctx.actor


def say(ctx: Context, template: str, /, **context: Any) -> Reply:
    """A text reply rendered from ``templates/chat/<template>.txt.j2``."""
    return Reply(ctx.core.templates.render(f"chat/{template}.txt.j2", **context))


def usage_reply(ctx: Context, *, inline: bool = False) -> Reply:
    """用法 and an example of the command this message named (on the next line, or after a comma)."""
    assert ctx.cmd is not None
    return say(ctx, "usage_inline" if inline else "usage", usage=ctx.cmd.usage, example=ctx.cmd.example)


def local(ctx: Context, when: datetime | None, fmt: str = "%m-%d %H:%M") -> str:
    return when.astimezone(ctx.core.settings.tz).strftime(fmt) if when else LABELS["chat"]["unscheduled"]


def mobile_tail(candidate: Candidate) -> str:
    return (candidate.mobile or "")[-4:] or "----"


def choices(ctx: Context, matches: Sequence[tuple[Interview, Candidate]]) -> list[dict[str, str]]:
    """The interviews of a numbered pick, as the pick template shows them."""
    return [
        {
            "name": c.name,
            "position": i.position,
            "when": local(ctx, i.scheduled_at),
            "tail": mobile_tail(c),
            "platform_id": i.platform_id,
        }
        for i, c in matches
    ]


async def open_action(
    ctx: Context, action: str, params: dict[str, Any], ttl: int | None = None, audit: prompts.Audit | None = None
) -> PendingAction:
    """Store a question or prompt that the asker answers in this chat (``audit`` in the same transaction)."""
    return await prompts.open_prompt(
        ctx.core, requester=ctx.actor, chat_id=ctx.msg.chat_id, action=action, params=params, ttl=ttl, audit=audit
    )


async def close_pending(ctx: Context, state: prompts.ActionState = prompts.ActionState.answered) -> bool:
    """Close the question this message answers; False if someone (or something) closed it first."""
    if ctx.pending is None:
        return False
    return await prompts.close(ctx.core, ctx.pending.id, state)


def pick_number(text: str, count: int) -> int | None:
    """'2' → 1 (zero-based) when within range."""
    stripped = text.strip()
    if stripped.isdigit() and 1 <= int(stripped) <= count:
        return int(stripped) - 1
    return None


async def find_interviews(
    ctx: Context, query: str, statuses: Sequence[str] = OPEN
) -> Sequence[tuple[Interview, Candidate]]:
    return await interviews.matching(ctx.core, query=query, hr_key=scope_of(ctx), statuses=statuses)


async def resolve_one(
    ctx: Context, query: str, *, then: str, params: dict[str, Any], statuses: Sequence[str] = OPEN
) -> tuple[tuple[Interview, Candidate] | None, list[Reply]]:
    """One open interview for ``query``, or replies that say why not.

    Several matches are listed numbered; the asker's next message (a number) is routed to
    the ``then`` answer handler with ``params`` plus the candidate platform ids. Never guesses.
    """
    matches = await events.found_once_applied(ctx.core, lambda: find_interviews(ctx, query, statuses))
    if not matches:
        return None, [say(ctx, "pick/not_found", query=query, open=tuple(statuses) == OPEN)]
    if len(matches) == 1:
        return matches[0], []
    await open_action(ctx, then, {**params, "choices": [i.platform_id for i, _ in matches]})
    return None, [say(ctx, "pick/choices", query=query, choices=choices(ctx, matches))]


async def picked_interview(ctx: Context) -> tuple[str | None, list[Reply]]:
    """For answer handlers of ``resolve_one``: the chosen platform id, or a re-ask."""
    assert ctx.pending is not None
    picked: list[str] = ctx.pending.params.get("choices", [])
    index = pick_number(ctx.args, len(picked))
    if index is None:  # 测试的, 产品那个: the words name one of the listed interviews
        rows = {i.platform_id: (i, c) for i, c in await interviews.get_many(ctx.core, picked)}
        listed = [
            Known(pid, rows[pid][1].name, rows[pid][0].position, rows[pid][0].status) for pid in picked if pid in rows
        ]
        index = pick_by_words(ctx.args, listed) if len(listed) == len(picked) else None
    if index is None:
        return None, [say(ctx, "pick/out_of_range", count=len(picked))]
    if not await close_pending(ctx):
        return None, [say(ctx, "pick/stale")]
    return picked[index], []


async def ask_reason(ctx: Context, *, then: str, params: dict[str, Any], head: str, detail: str) -> list[Reply]:
    """List the exit reasons numbered; the asker's answer goes to the ``then`` answer handler.

    ``detail`` (the words typed, by HR or the candidate) travels with the question, so the
    pick does not replace it: ``picked_reason`` hands it back for the exit record.
    """
    offered = await reasons.active(ctx.core)
    await open_action(ctx, then, {**params, "detail": detail})
    return [say(ctx, "pick/reasons", head=head, reasons=offered)]


async def picked_reason(ctx: Context) -> tuple[ExitReason | None, str, list[Reply]]:
    """For answer handlers of ``ask_reason``: the reason picked (by number or words), the detail
    to keep (the words typed before; else a worded answer), or a re-ask."""
    assert ctx.pending is not None
    offered = await reasons.active(ctx.core)
    index = pick_number(ctx.args, len(offered))
    reason = offered[index] if index is not None else match_reason(ctx.args, offered)
    if reason is None:
        return None, "", [say(ctx, "pick/unknown_reason", count=len(offered))]
    if not await close_pending(ctx):
        return None, "", [say(ctx, "pick/stale")]
    detail = str(ctx.pending.params.get("detail") or "") or ("" if index is not None else ctx.args)
    return reason, detail, []


async def reason_for(ctx: Context, code: str | None, words: str) -> ExitReason | None:
    """The exit reason a request named (by its code, as the parser or a stored question gives it),
    else the one the asker's words name; None: ask."""
    offered = await reasons.active(ctx.core)
    reason = next((r for r in offered if r.code == code), None) if code else None
    if reason is None and words:
        reason = match_reason(words, offered)
    return reason


async def names_reason(ctx: Context) -> bool:
    """For ``ask_reason`` questions: the words name an offered reason (so they answer the question)."""
    return match_reason(ctx.args, await reasons.active(ctx.core)) is not None


# Every status an interview can be in (a lookup that then says which state it is in).
ALL_STATUSES = tuple(STATUS_LABELS)


def one_at_a_time(ctx: Context, intent: Intent) -> Reply | None:
    """Two candidates in one request are refused with a clear message, never folded into the
    first one's 说明."""
    if len({ref.text for ref in intent.refs}) <= 1:
        return None
    names = LIST_SEP.join(ref.text for ref in intent.refs)
    assert ctx.cmd is not None
    return say(ctx, "language/one_at_a_time", names=names, example=ctx.cmd.example)


async def resolve_ref(
    ctx: Context,
    ref: CandidateRef,
    *,
    then: str,
    params: dict[str, Any],
    statuses: Sequence[str] = OPEN,
    doing: str,
    pick: bool = True,
) -> tuple[tuple[Interview, Candidate] | None, list[Reply]]:
    """One interview in ``statuses`` for the candidate ``ref`` names, or replies that say why not:
    not found (in the asker's scope), found but in another state (which one), or several (a
    numbered pick routed to the ``then`` answer handler with ``params`` plus the choices; with
    ``pick`` False, the first by time)."""

    async def look() -> Sequence[tuple[Interview, Candidate]]:
        if ref.platform_ids:
            return await interviews.get_many(ctx.core, ref.platform_ids)
        return await find_interviews(ctx, ref.text, ALL_STATUSES)

    rows = list(
        await events.found_once_applied(ctx.core, look, lambda found: any(i.status in statuses for i, _ in found))
    )
    if not rows:
        return None, [say(ctx, "pick/not_found", query=ref.text, open=tuple(statuses) == OPEN)]
    # Listed as 终止面试 always listed them: by time, then as they were booked.
    rows.sort(
        key=lambda row: (
            row[0].scheduled_at is None,
            row[0].scheduled_at.timestamp() if row[0].scheduled_at else 0,
            row[0].id or 0,
        )
    )
    fitting = [(i, c) for i, c in rows if i.status in statuses]
    if not fitting:
        states = [
            {
                "name": c.name,
                "position": i.position,
                "status": STATUS_LABELS.get(i.status, i.status),
                "when": local(ctx, i.ended_at or i.scheduled_at),
            }
            for i, c in rows
        ]
        return None, [say(ctx, "pick/wrong_state", states=states, doing=doing)]
    if len(fitting) == 1 or not pick:
        return fitting[0], []
    await open_action(ctx, then, {**params, "choices": [i.platform_id for i, _ in fitting]})
    return None, [say(ctx, "pick/choices", query=ref.text, choices=choices(ctx, fitting))]
