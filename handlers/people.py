"""授权 <姓名|用户ID> <角色> [姓名]: admins manage who may use the bot, from chat."""

from __future__ import annotations

from bot.chat.messages import Reply
from bot.dispatcher import Context, Router
from bot.services import people
from bot.services.people import Role

router = Router("people")

ROLE_NAMES = {
    "管理员": Role.admin.value,
    "admin": Role.admin.value,
    "经理": Role.manager.value,
    "主管": Role.manager.value,
    "manager": Role.manager.value,
    "hr": Role.hr.value,
    "HR": Role.hr.value,
    "招聘": Role.hr.value,
}
USAGE = "授权 <姓名或用户ID> <管理员|经理|HR|取消>  新成员:授权 <用户ID> <角色> <姓名>"


@router.command("授权", roles=frozenset({Role.admin.value}), usage=USAGE, example="授权 hr02 HR 赵先生")
async def grant(ctx: Context) -> list[Reply]:
    parts = ctx.args.split(" ")
    if len(parts) < 2:
        return [Reply(f"用法:{USAGE}")]
    who, role_word, *rest = parts
    revoke = role_word in ("取消", "撤销", "移除")
    role = ROLE_NAMES.get(role_word) or ROLE_NAMES.get(role_word.lower())
    if role is None and not revoke:
        return [Reply(f"未知角色「{role_word}」,可选:管理员、经理、HR;撤销权限用「取消」。")]
    platform = ctx.msg.platform
    found = await people.find(ctx.core, platform=platform, name_or_id=who)
    if len(found) > 1:
        ids = "、".join(p.user_id for p in found)
        return [Reply(f"有多位「{who}」({ids}),请改用用户ID。")]
    if revoke:
        if not found:
            return [Reply(f"找不到「{who}」。")]
        gone = await people.revoke(
            ctx.core, platform=platform, user_id=found[0].user_id, actor=ctx.actor, chat=ctx.chat
        )
        return [Reply(f"已撤销 {gone.name} 的权限。" if gone else f"找不到「{who}」。")]
    assert role is not None
    if not found and not rest:
        return [Reply(f"找不到「{who}」。添加新成员请用:授权 <用户ID> <角色> <姓名>")]
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
        return [Reply(f"已添加 {saved.person.name}({user_id}),角色 {role_word}。")]
    return [Reply(f"已将 {saved.person.name} 设为 {role_word}。")]
