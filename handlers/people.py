"""授权 <姓名|用户ID> <角色> [姓名]: admins manage who may use the bot, from chat."""

from __future__ import annotations

from bot.chat.messages import Reply
from bot.dispatcher import Context, Router
from bot.language.intents import Kind
from bot.services import people
from bot.services.people import Role
from handlers.common import LIST_SEP, say
from templates.labels import LABELS

router = Router("people")

ROLE_NAMES = LABELS["role_words"]
REVOKE_WORDS = LABELS["revoke_words"]


@router.command("授权", kind=Kind.authorize, roles=frozenset({Role.admin.value}))
async def grant(ctx: Context) -> list[Reply]:
    parts = ctx.args.split(" ")
    if len(parts) < 2:
        return [say(ctx, "usage_only", usage=ctx.cmd.usage if ctx.cmd else "")]
    who, role_word, *rest = parts
    revoke = role_word in REVOKE_WORDS
    role = ROLE_NAMES.get(role_word) or ROLE_NAMES.get(role_word.lower())
    if role is None and not revoke:
        return [say(ctx, "people/unknown_role", word=role_word)]
    platform = ctx.msg.platform
    found = await people.find(ctx.core, platform=platform, name_or_id=who)
    if len(found) > 1:
        return [say(ctx, "people/ambiguous", who=who, ids=LIST_SEP.join(p.user_id for p in found))]
    if revoke:
        if not found:
            return [say(ctx, "people/not_found", who=who)]
        gone = await people.revoke(
            ctx.core, platform=platform, user_id=found[0].user_id, actor=ctx.actor, chat=ctx.chat
        )
        return [say(ctx, "people/revoked", name=gone.name) if gone else say(ctx, "people/not_found", who=who)]
    assert role is not None
    if not found and not rest:
        return [say(ctx, "people/not_found_add", who=who)]
    user_id = found[0].user_id if found else who
    saved = await people.register(
        ctx.core,
        platform=platform,
        user_id=user_id,
        role=role,
        name=rest[0] if rest else None,
        actor=ctx.actor,
        chat=ctx.chat,
    )
    if saved.created:
        return [say(ctx, "people/added", name=saved.person.name, user_id=user_id, word=role_word)]
    return [say(ctx, "people/updated", name=saved.person.name, word=role_word)]
