"""A candidate writing to the customer-service chat (not a registered person; see
``bot.services.candidate_chat``).

An unknown sender is asked for the mobile number given with the application; a number matching a
candidate links the conversation. A linked candidate is told where their interview stands, and
their 求助 (or their wish to stop, read by ``bot.language.candidate``) opens a help request for
the HR owner, exactly as the platform's help button does. A question or a negation (不需要求助)
opens nothing.
"""

from __future__ import annotations

from typing import Any

from bot.chat.messages import Reply
from bot.dispatcher import Context
from bot.language import candidate as reading
from bot.language.normalize import normalize
from bot.services import candidate_chat
from bot.services.candidate_chat import Standing
from templates.labels import label


def _status(found: Standing) -> dict[str, Any]:
    return {
        "candidate_name": found.candidate_name,
        "position": found.position,
        "status_text": label(found.status, "candidate_interview_status") if found.status else "",
        "start_text": found.start_text,
    }


async def handle(ctx: Context) -> list[Reply]:
    """The answer to one candidate message (``ctx.msg``: sender = the customer, chat = the kf account)."""
    core, msg = ctx.core, ctx.msg
    text = normalize(msg.text)
    found = await candidate_chat.standing(core, contact=msg.sender_id)
    template: str
    values: dict[str, Any] = {}
    if found is None:
        mobile = candidate_chat.mobile_in(text)
        linked = None
        if mobile is not None:
            linked = await candidate_chat.link_by_mobile(
                core, contact=msg.sender_id, account=msg.chat_id, mobile=mobile
            )
        template = "ask_mobile" if mobile is None else "not_found" if linked is None else "linked"
        if linked is not None:
            values = _status(linked)
    else:
        values = _status(found)
        template = "status"
        ask = reading.read(text)
        if ask.kind == "help" and found.open:
            reached = await candidate_chat.ask_for_help(
                core,
                candidate_id=found.candidate_id,
                key=f"kf:{msg.msg_id}",
                reason=ask.reason or core.templates.render("kf/help_reason.txt.j2").strip(),
                wants_exit=ask.wants_exit,
            )
            if reached is not None:
                template, values["reached"] = "help", reached
    body = core.templates.render(f"kf/{template}.txt.j2", company=core.settings.company_name, **values)
    return [Reply(body)]
