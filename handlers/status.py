"""进行中 and 查看 <姓名>: read-only views of interviews."""

from __future__ import annotations

from bot.chat.messages import Reply
from bot.delivery import problem_of
from bot.dispatcher import Context, Router
from bot.language.intents import Kind
from bot.services import interviews
from bot.services.events import found_once_applied
from bot.services.reasons import shown_detail
from handlers.common import LIST_SEP, STATUS_LABELS, local, mobile_tail, say, scope_of, usage_reply
from templates.labels import label

router = Router("status")


@router.command("进行中", "正在进行的面试", kind=Kind.in_progress)
async def in_progress(ctx: Context) -> list[Reply]:
    now = ctx.core.clock.now()
    in_progress = (interviews.InterviewStatus.in_progress.value,)
    rows = await interviews.matching(ctx.core, query=None, hr_key=scope_of(ctx), statuses=in_progress)
    if not rows:
        return [say(ctx, "status/none_in_progress")]
    shown = []
    for interview, candidate in rows:
        started = interview.started_at or now
        shown.append(
            {
                "name": candidate.name,
                "position": interview.position,
                "elapsed": int((now - started).total_seconds() // 60),
                "idle": int((now - (interview.last_activity_at or started)).total_seconds() // 60),
                "answered": interview.answered_count,
                "platform_id": interview.platform_id,
            }
        )
    return [say(ctx, "status/in_progress", rows=shown)]


@router.command("查看", kind=Kind.show)
async def show(ctx: Context) -> list[Reply]:
    refs = ctx.intent.refs
    if not refs:
        return [usage_reply(ctx, inline=True)]
    blocks = []

    async def look() -> list[interviews.InterviewDetail]:
        found = []
        for ref in refs:
            if ref.platform_ids:
                found.extend(await interviews.details(ctx.core, platform_ids=ref.platform_ids))
            else:
                found.extend(
                    await interviews.details(
                        ctx.core, query=ref.text, hr_key=scope_of(ctx), statuses=tuple(STATUS_LABELS)
                    )
                )
        return found

    found = await found_once_applied(ctx.core, look)
    query = LIST_SEP.join(ref.text for ref in refs)
    for item in found:
        interview, candidate, record = item.interview, item.candidate, item.exit
        notices = []
        for notice, attempts in item.notices:
            parts = [label(notice.kind, "notice_kind"), label(notice.channel, "channel")]
            lines = []
            if notice.channel == "none" and notice.last_error:
                lines.append(f"  · {notice.last_error}")
            for attempt in attempts:
                result = label(attempt.result, "attempt_result")
                detail = f" {attempt.provider_id}" if attempt.provider_id else ""
                problem = problem_of(attempt.error) if attempt.result != "sent" else None
                if problem is not None:  # causes people can act on; the rest is for operators
                    detail = f" {label(problem.value, 'send_problem')}"
                channel = label(attempt.channel, "channel")
                lines.append(f"  · {local(ctx, attempt.started_at)} {channel} {result}{detail}")
            notices.append({"head": " · ".join([*parts, label(notice.status, "notice_status")]), "lines": lines})
        events = [f"  {local(ctx, e.at)} {label(e.action, 'audit_action')}({actor})" for e, actor in item.events]
        text = ctx.core.templates.render(
            "chat/status/detail.txt.j2",
            c=candidate,
            i=interview,
            status=STATUS_LABELS.get(interview.status, interview.status),
            scheduled=local(ctx, interview.scheduled_at),
            tail=mobile_tail(candidate),
            record=record,
            operator=item.exit_operator,
            exit_at=local(ctx, record.at) if record else "",
            said=shown_detail(record.detail, name=record.reason, code=record.reason_code) if record else "",
            superseded=item.superseded,
            notices=notices,
            events=events,
        )
        blocks.append(text)
    if not blocks:
        return [say(ctx, "status/not_found", query=query)]
    return [Reply("\n\n".join(blocks))]
