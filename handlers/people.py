"""授权 <姓名|用户ID> <角色> [姓名]: admins manage who may use the bot, from chat."""

from __future__ import annotations

from bot.chat.messages import Reply
from bot.dispatcher import Context, Router
from storage import repo
from storage.models import Person, Role

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
    now = ctx.core.clock.now()
    async with ctx.core.sessions() as session:
        found = await repo.people_named(session, platform=platform, name_or_id=who)
        if len(found) > 1:
            ids = "、".join(p.user_id for p in found)
            return [Reply(f"有多位「{who}」({ids}),请改用用户ID。")]
        if found and found[0].user_id == ctx.msg.sender_id:
            return [Reply("不能修改自己的权限。")]
        if revoke:
            if not found:
                return [Reply(f"找不到「{who}」。")]
            await session.delete(found[0])
            action, text = "person.revoked", f"已撤销 {found[0].name} 的权限。"
        elif found:
            found[0].role = role or found[0].role
            action, text = "person.updated", f"已将 {found[0].name} 设为 {role_word}。"
        elif rest:
            session.add(Person(platform=platform, user_id=who, name=rest[0], role=role or "", created_at=now))
            action, text = "person.added", f"已添加 {rest[0]}({who}),角色 {role_word}。"
        else:
            return [Reply(f"找不到「{who}」。添加新成员请用:授权 <用户ID> <角色> <姓名>")]
        repo.audit(
            session,
            at=now,
            actor=ctx.actor,
            action=action,
            chat=ctx.chat,
            detail={"person": f"{platform}:{who}", "role": role},
        )
        await session.commit()
    return [Reply(text)]
