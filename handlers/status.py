"""进行中 and 查看 <姓名>: read-only views of interviews."""

from __future__ import annotations

from bot.chat.messages import Reply
from bot.dispatcher import Context, Router
from bot.services import interviews
from bot.services.reasons import shown_detail
from handlers.common import STATUS_LABELS, local, mobile_tail, scope_of
from templates.labels import label

router = Router("status")


@router.command("进行中", "正在进行的面试", usage="进行中", example="进行中")
async def in_progress(ctx: Context) -> list[Reply]:
    now = ctx.core.clock.now()
    in_progress = (interviews.InterviewStatus.in_progress.value,)
    rows = await interviews.matching(ctx.core, query=None, hr_key=scope_of(ctx), statuses=in_progress)
    if not rows:
        return [Reply("当前没有进行中的面试。")]
    lines = [f"进行中的面试({len(rows)} 场):"]
    for interview, candidate in rows:
        started = interview.started_at or now
        elapsed = int((now - started).total_seconds() // 60)
        idle = int((now - (interview.last_activity_at or started)).total_seconds() // 60)
        lines.append(
            f"· {candidate.name} {interview.position}:已进行 {elapsed} 分钟,最近操作 {idle} 分钟前,"
            f"已作答 {interview.answered_count} 题({interview.platform_id})"
        )
    return [Reply("\n".join(lines))]


@router.command("查看", usage="查看 <姓名或面试编号>", example="查看 张三")
async def show(ctx: Context) -> list[Reply]:
    query = ctx.args.split(" ")[0] if ctx.args else ""
    if not query:
        return [Reply("用法:查看 <姓名或面试编号>,例如:查看 张三")]
    blocks = []
    found = await interviews.details(ctx.core, query=query, hr_key=scope_of(ctx), statuses=tuple(STATUS_LABELS))
    for item in found:
        interview, candidate, record = item.interview, item.candidate, item.exit
        lines = [
            f"【{candidate.name}】{interview.position}({interview.platform_id})",
            f"状态:{STATUS_LABELS.get(interview.status, interview.status)};流程:{candidate.pipeline_status}",
            f"预约:{local(ctx, interview.scheduled_at)};已作答 {interview.answered_count} 题",
            f"手机:{candidate.mobile or '无'};邮箱:{candidate.email or '无'};尾号{mobile_tail(candidate)}",
        ]
        if record:
            lines.append(f"退出:{record.reason},操作人 {item.exit_operator},{local(ctx, record.at)}")
            if said := shown_detail(record.detail, name=record.reason, code=record.reason_code):
                lines.append(f"说明:{said}")
        if item.superseded:
            lines.append(f"通知:另有 {item.superseded} 条未发出的旧通知已被更新的通知取代")
        for notice, attempts in item.notices:
            parts = [label(notice.kind, "notice_kind"), label(notice.channel, "channel")]
            lines.append(f"通知:{' · '.join([*parts, label(notice.status, 'notice_status')])}")
            if notice.channel == "none" and notice.last_error:
                lines.append(f"  · {notice.last_error}")
            for attempt in attempts:
                result = label(attempt.result, "attempt_result")
                detail = f" {attempt.provider_id}" if attempt.provider_id else ""
                if attempt.error and attempt.result != "sent":
                    detail = f" {attempt.error[:60]}"
                channel = label(attempt.channel, "channel")
                lines.append(f"  · {local(ctx, attempt.started_at)} {channel} {result}{detail}")
        for event, actor in item.events:
            lines.append(f"  {local(ctx, event.at)} {label(event.action, 'audit_action')}({actor})")
        blocks.append("\n".join(lines))
    if not blocks:
        return [Reply(f"没有找到你可以查看的「{query}」的面试。")]
    return [Reply("\n\n".join(blocks))]
