"""共享: a manager lets another HR see and act on an interview they do not own."""

from __future__ import annotations

from dataclasses import dataclass

from bot.services import notices
from bot.services.context import Core
from bot.services.errors import ServiceError
from storage import repo
from storage.models import Role


class SharingError(ServiceError):
    code = "share_refused"


@dataclass(frozen=True)
class Shared:
    person_name: str
    candidate_name: str


async def share(
    core: Core, *, platform: str, platform_id: str, colleague: str, actor: str, sharer: str, chat: str | None = None
) -> Shared:
    """Share interview ``platform_id`` with the HR or manager of ``platform`` named (or with id)
    ``colleague``: a share row, their notice and the audit event in one transaction, then the outbox is woken."""
    now = core.clock.now()
    async with core.sessions() as session:
        people = [
            p
            for p in await repo.people_named(session, platform=platform, name_or_id=colleague)
            if p.role in (Role.hr.value, Role.manager.value)
        ]
        if not people:
            raise SharingError(core.templates.render("chat/share/unknown_colleague.txt.j2", colleague=colleague))
        if len(people) > 1:
            ids = "、".join(p.user_id for p in people)
            raise SharingError(core.templates.render("chat/share/ambiguous.txt.j2", colleague=colleague, ids=ids))
        person = people[0]
        interview = await repo.get_interview(session, platform_id=platform_id)
        assert interview is not None and interview.id is not None
        candidate = await repo.get_candidate(session, candidate_id=interview.candidate_id)
        assert candidate is not None
        person_key, person_name, candidate_name = person.key, person.name, candidate.name
        if interview.hr_key == person_key:
            raise SharingError(core.templates.render("chat/share/owner.txt.j2", person_name=person_name))
        # A failed insert rolls back and expires loaded rows: use the copies above afterwards.
        if not await repo.share_interview_and_commit(
            session, interview_id=interview.id, person_key=person_key, shared_by=actor, now=now
        ):
            raise SharingError(core.templates.render("chat/share/already.txt.j2", person_name=person_name))
        await notices.notify_staff(
            session,
            core,
            kind="interview_shared",
            person_key=person.key,
            interview=interview,
            now=now,
            text=core.templates.render(
                "chat/share/shared_with_you.txt.j2",
                sharer=sharer,
                candidate_name=candidate.name,
                position=interview.position,
            ),
            dedupe_key=f"shared:{interview.id}:{person.key}",
        )
        repo.audit(
            session,
            at=now,
            actor=actor,
            action="interview.shared",
            interview_id=interview.id,
            chat=chat,
            detail={"to": person.key},
        )
        await session.commit()
    core.wake_outbox()
    return Shared(person_name, candidate_name)
