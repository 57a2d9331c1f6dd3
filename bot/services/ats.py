"""An exit written back to the company's recruiting system (ATS), through the outbox.

The link between our interview and the candidate's application there comes from the platform's
event (``interview.ats``: ``{"system", "application_id", "external_application_id"}``, stored by
``bot.services.events``). No other lookup exists yet: an interview without that link is not written
back. A system is written to only when a channel says it can (``Core.ats_systems``; its outbox
channel is the system's name).

``queue_exit`` runs in the exit's own transaction (``bot.services.termination._commit``) and queues
one outbox row per call, so each is retried on its own (attempt recorded before the call, backoff,
the sender's pacing), and none is lost when the process dies after the exit:

- ``interview``: the AI interview as an interview held outside the system, on the external
  application, with whether the candidate took part (``Participation``), and an idempotency id
  derived from our interview attempt (``external_id``);
- ``transfer`` or ``terminate``: what the admin's mapping (``AtsReasonMap``) says the exit's reason
  does to the application (move it to a stage; terminate it with a type and reasons). The mapping
  in force when the exit is recorded is the one written into the row.

A row that goes dead (a permission missing, a refused id) is told to the HR owner in chat
(``exit_failed``, from the services' delivery policy) and stays on the 通知 page, retryable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.delivery import Audience, NoticeKind
from bot.services import notices  # (notices imports this module too: attributes at call time)
from bot.services.context import Core
from bot.services.errors import ServiceError, refusal
from storage import repo
from storage.models import AtsAction, AtsReasonMap, AttemptResult, ExitReason, ExitRecord, Interview, Notice, ReasonCode

log = logging.getLogger(__name__)

# Exits the candidate caused before starting: a no-show rather than "did not take part".
NO_SHOW_REASONS = frozenset({ReasonCode.candidate_quit, ReasonCode.idle_timeout})


class Participation(IntEnum):
    """``participate_status`` of an external interview (1 未参与, 2 参与, 3 爽约)."""

    absent = 1
    took_part = 2
    no_show = 3


class Call(IntEnum):
    """The order of a row's call (only for display; each row is retried on its own)."""

    interview = 1
    transfer = 2
    terminate = 3


def participation(interview: Interview, reason_code: str) -> Participation:
    """Started or answered something: took part; else a candidate-side exit is a no-show, and an
    exit for the company's reasons (system failure, process change, …) means did not take part."""
    if interview.started_at is not None or interview.answered_count > 0:
        return Participation.took_part
    return Participation.no_show if reason_code in NO_SHOW_REASONS else Participation.absent


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _row(interview: Interview, system: str, call: Call, now: datetime, body: str, **payload: Any) -> Notice:
    assert interview.id is not None
    return Notice(
        kind=NoticeKind.ats_exit.value,
        channel=system,
        recipient=str(payload.get("application_id") or payload.get("external_application_id") or ""),
        interview_id=interview.id,
        subject=call.name,
        body=body,
        payload={"audience": Audience.ats.value, "call": call.name, **payload},
        # One destination per system: the sender's rate limit is the app's, not an application's.
        destination=system,
        dedupe_key=f"ats:{system}:{interview.attempt_key}:{call.name}",
        next_attempt_at=now,
        created_at=now,
    )


async def queue_exit(
    session: AsyncSession, core: Core, *, interview: Interview, record: ExitRecord, reason: ExitReason, now: datetime
) -> list[Notice]:
    """The exit's calls to the recruiting system the interview is linked to (none when it is not
    linked, or the system is not connected), added to ``session`` (the exit's transaction)."""
    link = interview.ats or {}
    system = link.get("system")
    if not system:
        return []
    if system not in core.ats_systems:
        log.info("interview %s is linked to %s, which is not connected: nothing written back", interview.id, system)
        return []
    application_id = link.get("application_id")
    external_application_id = link.get("external_application_id")
    rows: list[Notice] = []
    if external_application_id:
        started = interview.started_at or interview.scheduled_at or record.at
        rows.append(
            _row(
                interview,
                system,
                Call.interview,
                now,
                f"AI interview attempt {interview.attempt_key}: {record.reason_code}",
                application_id=application_id,
                external_application_id=external_application_id,
                external_id=f"exit-{interview.platform_id}-{interview.attempt}"[:64],
                participate_status=int(participation(interview, record.reason_code)),
                begin_time=_ms(min(started, record.at)),
                end_time=_ms(record.at),
            )
        )
    else:
        log.info("interview %s has no external application: its AI interview is not recorded", interview.id)
    mapping = await repo.get_ats_mapping(session, system=system, reason_code=reason.code)
    if mapping is not None and application_id:
        if mapping.action == AtsAction.transfer and mapping.stage_id:
            rows.append(
                _row(
                    interview,
                    system,
                    Call.transfer,
                    now,
                    f"move to stage {mapping.stage_id}",
                    application_id=application_id,
                    stage_id=mapping.stage_id,
                )
            )
        elif mapping.action == AtsAction.terminate and mapping.termination_type is not None:
            rows.append(
                _row(
                    interview,
                    system,
                    Call.terminate,
                    now,
                    f"terminate ({mapping.termination_type})",
                    application_id=application_id,
                    termination_type=mapping.termination_type,
                    termination_reason_ids=list(mapping.termination_reason_ids),
                    # The reason's label only: HR's own words stay with us.
                    note=reason.name,
                )
            )
    for row in rows:
        repo.add_notice(session, row)
    return rows


async def exit_failed(session: AsyncSession, core: Core, notice: Notice, now: datetime) -> None:
    """A write-back row went dead: its HR owner hears in chat what did not reach the system, and why."""
    if notice.interview_id is None:
        return
    interview = await repo.get_interview_by_pk(session, interview_id=notice.interview_id)
    if interview is None:
        return
    candidate = await repo.get_candidate(session, candidate_id=interview.candidate_id)
    assert notice.id is not None
    attempts = (await repo.attempts_for_notices(session, notice_ids=[notice.id]))[notice.id]
    text = core.templates.render(
        "notices/ats_failed.txt.j2",
        # A crash cut an attempt off: the call may have been made; HR is asked to check, not told it failed.
        maybe_done=any(a.result == AttemptResult.unknown for a in attempts),
        system=notice.channel,
        call=str(notice.payload.get("call", "")),
        candidate_name=candidate.name if candidate else "",
        position=interview.position,
        error=notice.last_error or "",
        notice_id=notice.id,
    )
    await notices.notify_staff(
        session,
        core,
        kind=NoticeKind.ats_failed,
        person_key=interview.hr_key,
        interview=interview,
        now=now,
        text=text,
        dedupe_key=f"ats-failed:{notice.id}:{notice.attempts}",
    )


# --- the admin's mapping -------------------------------------------------------------------------


@dataclass(frozen=True)
class MappingRow:
    reason_code: str
    reason_name: str
    action: str
    stage_id: str | None
    termination_type: int | None
    termination_reason_ids: tuple[str, ...]


class MappingError(ServiceError):
    code = "ats_mapping_invalid"
    http_status = 400


class AtsError(ServiceError):
    """A recruiting system refused or could not be reached (a Chinese message for people)."""

    code = "ats_failed"
    http_status = 502


async def mappings(core: Core, system: str) -> list[MappingRow]:
    """Every exit reason with what it does in ``system`` (``record`` where nothing is mapped)."""
    async with core.sessions() as session:
        reasons = await repo.list_reasons(session, active_only=False)
        found = {m.reason_code: m for m in await repo.ats_mappings(session, system=system)}
    rows = []
    for r in reasons:
        m = found.get(r.code)
        rows.append(
            MappingRow(
                reason_code=r.code,
                reason_name=r.name,
                action=m.action if m else AtsAction.record.value,
                stage_id=m.stage_id if m else None,
                termination_type=m.termination_type if m else None,
                termination_reason_ids=tuple(m.termination_reason_ids) if m else (),
            )
        )
    return rows


TERMINATION_TYPES = frozenset({1, 22, 27})  # 我们拒绝了候选人 / 候选人拒绝了我们 / 其他


async def set_mapping(
    core: Core,
    *,
    system: str,
    reason_code: str,
    action: AtsAction,
    operator: str,
    stage_id: str | None = None,
    termination_type: int | None = None,
    termination_reason_ids: tuple[str, ...] = (),
) -> AtsReasonMap:
    """Store what ``reason_code`` does in ``system``; bad input changes nothing (``MappingError``)."""
    if action == AtsAction.transfer and not stage_id:
        raise MappingError(refusal(core, "ats_stage_required"))
    if action == AtsAction.terminate and termination_type not in TERMINATION_TYPES:
        raise MappingError(refusal(core, "ats_termination_type", value=termination_type))
    now = core.clock.now()
    async with core.sessions() as session:
        if await repo.get_reason(session, code=reason_code) is None:
            raise MappingError(refusal(core, "ats_unknown_reason", code=reason_code))
        row = AtsReasonMap(
            system=system,
            reason_code=reason_code,
            action=action.value,
            stage_id=stage_id if action == AtsAction.transfer else None,
            termination_type=termination_type if action == AtsAction.terminate else None,
            termination_reason_ids=list(termination_reason_ids) if action == AtsAction.terminate else [],
            updated_by=operator,
            updated_at=now,
        )
        stored = await repo.put_ats_mapping(session, row)
        repo.audit(
            session,
            at=now,
            actor=operator,
            action="ats.mapping_set",
            detail={
                "system": system,
                "reason_code": reason_code,
                "action": action.value,
                "stage_id": row.stage_id,
                "termination_type": row.termination_type,
                "termination_reason_ids": row.termination_reason_ids,
            },
        )
        await session.commit()
        return stored
