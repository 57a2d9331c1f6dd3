"""A test notice an admin sends through the real outbox to check a candidate channel end to end
(``python -m bot notice test``): queued here, delivered by the running service, result read back."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

from sqlmodel import col, select

from bot.services.context import Core
from storage import repo
from storage.models import Notice, NoticeAttempt, NoticeStatus

KIND = "admin_test"
LABELS = {"email": "邮件", "sms": "短信"}
_ADDRESS = {
    "email": re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+"),
    "sms": re.compile(r"\+?\d{6,15}"),
}
POLL_SECONDS = 0.5


class NotUsable(ValueError):
    """The channel cannot take a test notice now (the message says what to set)."""


@dataclass
class Outcome:
    notice: Notice
    attempts: list[NoticeAttempt]

    @property
    def done(self) -> bool:
        return self.notice.status in (NoticeStatus.sent.value, NoticeStatus.dead.value)


def check(core: Core, channel: str, recipient: str) -> None:
    """Raise NotUsable when the channel is off or the address is not one; nothing is queued then."""
    label = LABELS[channel]
    if not _ADDRESS[channel].fullmatch(recipient):
        raise NotUsable(f"「{recipient}」不是有效的{'邮箱地址' if channel == 'email' else '手机号'}")
    settings = core.settings
    if channel == "email" and not settings.smtp_enabled:
        raise NotUsable(f"{label}渠道没有启用:请设置 SMTP_HOST 和 SMTP_FROM")
    if channel == "sms":
        problem = settings.sms_problem()
        if problem:
            raise NotUsable(f"{label}渠道没有启用:{problem}")
        if KIND not in settings.sms_template_map():
            raise NotUsable(
                f'{label}测试需要一个已审核的短信模板:在 SMS_TEMPLATES 中加入 "{KIND}",'
                f'例如 "{KIND}": {{"code": "SMS_123456", "params": ["company"]}}'
            )


async def queue(core: Core, channel: str, recipient: str) -> Notice:
    """Check, then commit one test notice for the outbox (no fallback: it tests this channel)."""
    check(core, channel, recipient)
    now = core.clock.now()
    ctx = {"company": core.settings.company_name, "channel_label": LABELS[channel]}
    t = core.templates
    notice = Notice(
        kind=KIND,
        channel=channel,
        recipient=recipient,
        subject=t.render(f"notices/{KIND}.subject.j2", **ctx),
        body=t.render(f"notices/{KIND}.txt.j2", **ctx),
        payload={"audience": "admin", "ctx": ctx, "sms_text": t.render(f"notices/{KIND}.sms.j2", **ctx)},
        destination=f"{channel}:{recipient}",
        dedupe_key=f"{KIND}:{channel}:{recipient}:{now.isoformat()}",
        next_attempt_at=now,
        created_at=now,
    )
    async with core.sessions() as session:
        repo.add_notice(session, notice)
        await session.commit()
        await session.refresh(notice)
    return notice


async def outcome(core: Core, notice_id: int) -> Outcome:
    async with core.sessions() as session:
        notice = await session.get(Notice, notice_id)
        assert notice is not None
        stmt = select(NoticeAttempt).where(NoticeAttempt.notice_id == notice_id).order_by(col(NoticeAttempt.id))
        attempts = list((await session.exec(stmt)).all())
    return Outcome(notice, attempts)


async def wait(core: Core, notice_id: int, seconds: float) -> Outcome:
    """The notice once sent or dead, or as it stands after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        result = await outcome(core, notice_id)
        if result.done or time.monotonic() >= deadline:
            return result
        await asyncio.sleep(POLL_SECONDS)
