"""People known to the bot: registration (授权, ``people add``) and display names (``wecom:hr01`` → 刘经理)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import memo
from bot.services.context import Core
from bot.services.errors import ServiceError
from storage import repo
from storage.models import Person, Role
from templates.labels import LABELS

__all__ = [
    "PeopleError",
    "Person",
    "Registered",
    "Role",
    "display_name",
    "display_names",
    "find",
    "get",
    "register",
    "revoke",
]


async def display_name(session: AsyncSession, key: str | None) -> str:
    """The registered person's name for ``platform:user_id``; 系统 / 候选人本人 for those operators;
    otherwise the key itself (an admin API operator such as ``lihua``, or someone since removed)."""
    if not key:
        return ""
    known = LABELS["operator"].get(key)
    if known:
        return known
    platform, sep, user_id = key.partition(":")
    if sep:
        person = await repo.get_person(session, platform=platform, user_id=user_id)
        if person is not None:
            return person.name
    return key


async def display_names(session: AsyncSession, keys: Iterable[str | None]) -> dict[str, str]:
    return {key: await display_name(session, key) for key in set(keys) if key}


# --- registration: one set of rules for 授权 in chat and ``people add`` on the command line -------


class PeopleError(ServiceError):
    code = "person_refused"


@dataclass(frozen=True)
class Registered:
    person: Person
    created: bool


async def find(core: Core, *, platform: str, name_or_id: str) -> Sequence[Person]:
    """Registered people of ``platform`` whose name or user id is ``name_or_id``."""
    async with core.sessions() as session:
        return await repo.people_named(session, platform=platform, name_or_id=name_or_id)


async def register(
    core: Core,
    *,
    platform: str,
    user_id: str,
    role: str,
    actor: str,
    name: str | None = None,
    mobile: str | None = None,
    email: str | None = None,
    chat: str | None = None,
) -> Registered:
    """Add ``platform:user_id`` with ``role``, or update their role (and name, mobile, email when
    given). Nobody changes their own role; a new person needs a name. Audited in the same transaction."""
    if role not in {r.value for r in Role}:
        raise PeopleError(f"未知角色「{role}」")
    if actor == f"{platform}:{user_id}":
        raise PeopleError("不能修改自己的权限。")
    now = core.clock.now()
    async with core.sessions() as session:
        person = await repo.get_person(session, platform=platform, user_id=user_id)
        created = person is None
        if person is None:
            if not name:
                raise PeopleError(f"新成员 {user_id} 需要姓名")
            person = Person(platform=platform, user_id=user_id, name=name, role=role, created_at=now)
        person.role = role
        person.name = name or person.name
        person.mobile = mobile or person.mobile
        person.email = email or person.email
        session.add(person)
        repo.audit(
            session,
            at=now,
            actor=actor,
            action="person.added" if created else "person.updated",
            chat=chat,
            detail={"person": f"{platform}:{user_id}", "role": role},
        )
        try:
            await session.commit()
        except IntegrityError as exc:
            raise PeopleError("同一用户正在被另一个进程写入,请重试") from exc
        await session.refresh(person)
        return Registered(person, created)


async def revoke(core: Core, *, platform: str, user_id: str, actor: str, chat: str | None = None) -> Person | None:
    """Remove ``platform:user_id`` (None if unknown); nobody revokes themselves. Audited with the delete."""
    if actor == f"{platform}:{user_id}":
        raise PeopleError("不能修改自己的权限。")
    async with core.sessions() as session:
        person = await repo.get_person(session, platform=platform, user_id=user_id)
        if person is None:
            return None
        await session.delete(person)
        repo.audit(
            session,
            at=core.clock.now(),
            actor=actor,
            action="person.revoked",
            chat=chat,
            detail={"person": f"{platform}:{user_id}", "role": None},
        )
        await session.commit()
        return person


async def get(core: Core, *, platform: str, user_id: str) -> Person | None:
    """The registered person ``platform:user_id``, or None (remembered within a batch, see ``memo``)."""

    async def load() -> Person | None:
        async with core.sessions() as session:
            return await repo.get_person(session, platform=platform, user_id=user_id)

    return await memo.lookup(("person", platform, user_id), load, keep=lambda _: True)
