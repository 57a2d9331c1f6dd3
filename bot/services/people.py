"""People known to the bot: registration (授权, ``people add``) and display names (``wecom:hr01`` → 刘经理)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.context import Core
from bot.services.errors import ServiceError
from storage import repo
from storage.models import Person, Role
from templates.labels import LABELS

__all__ = [
    "PeopleError",
    "Person",
    "PersonNotFound",
    "Registered",
    "Role",
    "display_name",
    "display_names",
    "field_errors",
    "find",
    "get",
    "list_all",
    "register",
    "revoke",
    "scope_key",
    "update",
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


# --- registration: one set of rules for 授权 in chat, the 人员 page, ``people add`` and CSV import --

USER_ID_MAX = 128
NAME_MAX = 64
_MOBILE = re.compile(r"\+?[0-9][0-9 -]{4,30}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class PeopleError(ServiceError):
    code = "person_refused"


class PersonNotFound(PeopleError):
    code = "person_not_found"
    http_status = 404


@dataclass(frozen=True)
class Registered:
    person: Person
    created: bool
    # field -> [before, after] of what this call changed (empty for a new person).
    changes: dict[str, list[str | None]] = field(default_factory=dict)


def _message(core: Core, error: str, **context: Any) -> str:
    return core.templates.render("admin/errors.txt.j2", error=error, **context)


def field_errors(
    core: Core,
    *,
    platform: str,
    user_id: str,
    role: str | None,
    name: str | None,
    mobile: str | None,
    email: str | None,
    platforms: Sequence[str] | None,
) -> list[str]:
    """Why these values cannot be stored for a person (Chinese, one message each; empty when fine).
    ``platforms`` are the known platform names (None: not checked); "" for mobile or email clears it."""
    errors: list[str] = []
    if platforms is not None and platform not in platforms:
        errors.append(_message(core, "unknown_platform", platform=platform, platforms=list(platforms)))
    if not user_id:
        errors.append(_message(core, "user_id_empty"))
    elif len(user_id) > USER_ID_MAX:
        errors.append(_message(core, "user_id_long", limit=USER_ID_MAX))
    if role is not None and role not in {r.value for r in Role}:
        errors.append(_message(core, "unknown_role", role=role))
    if name and len(name) > NAME_MAX:
        errors.append(_message(core, "name_long", limit=NAME_MAX))
    if mobile and not (len(mobile) <= MOBILE_MAX and _MOBILE.fullmatch(mobile)):
        errors.append(_message(core, "bad_mobile", mobile=mobile))
    if email and not (len(email) <= EMAIL_MAX and _EMAIL.fullmatch(email)):
        errors.append(_message(core, "bad_email", email=email))
    return errors


MOBILE_MAX = 32
EMAIL_MAX = 254


def planned_changes(
    person: Person, *, role: str | None, name: str | None, mobile: str | None, email: str | None
) -> dict[str, list[str | None]]:
    """What writing these values would change (None: keep; "" for mobile or email: clear)."""
    wanted: dict[str, str | None] = {}
    if role is not None:
        wanted["role"] = role
    if name:
        wanted["name"] = name
    if mobile is not None:
        wanted["mobile"] = mobile or None
    if email is not None:
        wanted["email"] = email or None
    return {k: [getattr(person, k), v] for k, v in wanted.items() if getattr(person, k) != v}


def write_person(
    core: Core,
    session: AsyncSession,
    person: Person | None,
    *,
    platform: str,
    user_id: str,
    role: str | None,
    name: str | None,
    mobile: str | None,
    email: str | None,
    actor: str,
    source: str,
    chat: str | None = None,
) -> Registered:
    """Add or change one person in ``session`` with its audit (the caller commits); the rules
    are checked already except the ones that need the stored row."""
    now = core.clock.now()
    created = person is None
    if person is None:
        if not name:
            raise PeopleError(_message(core, "name_required", user_id=user_id))
        if role is None:
            raise PeopleError(_message(core, "unknown_role", role=""))
        person = Person(platform=platform, user_id=user_id, name=name, role=role, created_at=now)
        changes: dict[str, list[str | None]] = {}
        person.mobile = mobile or None
        person.email = email or None
    else:
        changes = planned_changes(person, role=role, name=name, mobile=mobile, email=email)
        if "role" in changes and actor == f"{platform}:{user_id}":
            raise PeopleError(_message(core, "self_role"))
        for key, (_, after) in changes.items():
            setattr(person, key, after)
    session.add(person)
    repo.audit(
        session,
        at=now,
        actor=actor,
        action="person.added" if created else "person.updated",
        chat=chat,
        detail={"person": f"{platform}:{user_id}", "role": person.role, "source": source, "changes": changes},
    )
    return Registered(person, created, changes)


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
    source: str = "chat",
    platforms: Sequence[str] | None = None,
) -> Registered:
    """Add ``platform:user_id`` with ``role``, or update their role (and name, mobile, email when
    given; "" clears mobile or email). Nobody changes their own role; a new person needs a name;
    ``platforms`` (the channel registry's names, given by the caller) limits the platform.
    Audited in the same transaction, with ``source`` (chat, console, cli)."""
    if role not in {r.value for r in Role}:
        raise PeopleError(_message(core, "unknown_role", role=role))
    if actor == f"{platform}:{user_id}":
        raise PeopleError(_message(core, "self_role"))
    errors = field_errors(
        core,
        platform=platform,
        user_id=user_id,
        role=role,
        name=name,
        mobile=mobile,
        email=email,
        platforms=platforms,
    )
    if errors:
        raise PeopleError(errors[0], errors=errors)
    async with core.sessions() as session:
        person = await repo.get_person(session, platform=platform, user_id=user_id)
        saved = write_person(
            core,
            session,
            person,
            platform=platform,
            user_id=user_id,
            role=role,
            name=name,
            mobile=mobile,
            email=email,
            actor=actor,
            source=source,
            chat=chat,
        )
        try:
            await session.commit()
        except IntegrityError as exc:
            raise PeopleError(_message(core, "concurrent")) from exc
        await session.refresh(saved.person)
        return saved


async def update(
    core: Core,
    *,
    platform: str,
    user_id: str,
    actor: str,
    source: str,
    role: str | None = None,
    name: str | None = None,
    mobile: str | None = None,
    email: str | None = None,
) -> Registered:
    """Change a registered person's role, name or contact (None: unchanged; "" clears mobile or
    email). ``PersonNotFound`` when there is no such person. Same rules as ``register``."""
    errors = field_errors(
        core, platform=platform, user_id=user_id, role=role, name=name, mobile=mobile, email=email, platforms=None
    )
    if errors:
        raise PeopleError(errors[0], errors=errors)
    async with core.sessions() as session:
        person = await repo.get_person(session, platform=platform, user_id=user_id)
        if person is None:
            raise PersonNotFound(_message(core, "person_not_found", person=f"{platform}:{user_id}"))
        saved = write_person(
            core,
            session,
            person,
            platform=platform,
            user_id=user_id,
            role=role,
            name=name,
            mobile=mobile,
            email=email,
            actor=actor,
            source=source,
        )
        if not saved.changes:
            return saved
        await session.commit()
        await session.refresh(saved.person)
        return saved


async def revoke(
    core: Core, *, platform: str, user_id: str, actor: str, chat: str | None = None, source: str = "chat"
) -> Person | None:
    """Remove ``platform:user_id`` (None if unknown); nobody revokes themselves. Audited with the delete."""
    if actor == f"{platform}:{user_id}":
        raise PeopleError(_message(core, "self_role"))
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
            detail={"person": f"{platform}:{user_id}", "role": None, "source": source, "was": person.role},
        )
        await session.commit()
        return person


# The roles that see every interview and the 统计 (chat's 统计 command and the console's page).
MANAGERS = frozenset({Role.admin.value, Role.manager.value})


def scope_key(person: Person) -> str | None:
    """Whose interviews ``person`` sees and acts on: None (all) for managers and admins, else their own
    key (their own and shared interviews), as chat's role rules."""
    return None if person.role in MANAGERS else person.key


async def list_all(core: Core) -> Sequence[Person]:
    """Everyone registered, by platform and user id."""
    async with core.sessions() as session:
        return await repo.list_people(session)


async def get(core: Core, *, platform: str, user_id: str) -> Person | None:
    """The registered person ``platform:user_id``, or None (remembered within a batch, see ``memo``)."""

    async def load() -> Person | None:
        async with core.reads() as session:
            return await repo.get_person(session, platform=platform, user_id=user_id)

    return await core.lookups.lookup(("person", platform, user_id), load, keep=lambda _: True)
