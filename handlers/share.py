"""共享 <姓名|编号> <HR>: a manager lets another HR see and act on an interview they do not own."""

from __future__ import annotations

from bot.chat.messages import Reply
from bot.dispatcher import MANAGERS, Context, Flow, Router, Step
from bot.language.intents import Kind
from bot.services import sharing
from handlers.common import STATUS_LABELS, picked_interview, resolve_one

router = Router("share")


def two_words(args: str) -> tuple[str, str] | None:
    """共享 张三 赵先生: the interview and the colleague."""
    parts = args.split(" ")
    return (parts[0], parts[1]) if len(parts) == 2 else None


@router.command("共享", kind=Kind.share, roles=MANAGERS, parse=two_words)
async def share(ctx: Context) -> list[Reply]:
    who, colleague = ctx.value
    found, replies = await resolve_one(
        ctx, who, then="share.pick_interview", params={"to": colleague}, statuses=tuple(STATUS_LABELS)
    )
    if found is None:
        return replies
    return await _share(ctx, found[0].platform_id, colleague)


async def on_pick(ctx: Context) -> list[Reply]:
    platform_id, replies = await picked_interview(ctx)
    if platform_id is None:
        return replies
    assert ctx.pending is not None
    return await _share(ctx, platform_id, ctx.pending.params["to"])


async def _share(ctx: Context, platform_id: str, colleague: str) -> list[Reply]:
    shared = await sharing.share(
        ctx.core,
        platform=ctx.msg.platform,
        platform_id=platform_id,
        colleague=colleague,
        actor=ctx.actor,
        sharer=ctx.person.name if ctx.person else ctx.actor,
        chat=ctx.chat,
    )
    text = ctx.core.templates.render(
        "chat/share/done.txt.j2", candidate_name=shared.candidate_name, person_name=shared.person_name
    )
    return [Reply(text)]


# The conversation: 共享 <who> <colleague> → (which interview?) → shared.
FLOW = router.flow(Flow("share", steps={"share.pick_interview": Step(on_pick)}))
