"""Applying the AI-interview platform's events to our records, each event once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.bounded import check_time
from bot.services import help_requests, lifecycle, outbound, reminders
from bot.services.context import Core
from storage import repo
from storage.models import (
    OPEN_INTERVIEW_STATUSES,
    PLATFORM_EVENTS,
    Candidate,
    Interview,
    InterviewStatus,
    Pipeline,
    Reminder,
)

log = logging.getLogger(__name__)


class EventType(StrEnum):
    scheduled = "interview.scheduled"
    started = "interview.started"
    activity = "interview.activity"
    answer_saved = "interview.answer_saved"
    completed = "interview.completed"
    help_requested = "interview.help_requested"


# Aware and within 1970–2999: near year 1 or 9999 a time zone shift overflows.
EventTime = Annotated[AwareDatetime, AfterValidator(check_time)]


class CandidateIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=64)
    mobile: str | None = Field(None, max_length=32)
    email: str | None = Field(None, max_length=254)


class HrIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    platform: str = Field(min_length=1, max_length=32)
    user_id: str = Field(min_length=1, max_length=128)


class AtsIn(BaseModel):
    """The candidate's application in the company's recruiting system, when the platform knows it;
    an exit is written back to it (``bot.services.ats``)."""

    model_config = ConfigDict(extra="ignore")
    system: str = Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")
    application_id: str = Field(min_length=1, max_length=64)
    # Where the system records interviews held outside it on a separate "external application".
    external_application_id: str | None = Field(None, min_length=1, max_length=64)


class InterviewIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=128)
    position: str = Field("", max_length=128)
    scheduled_at: EventTime | None = None
    join_url: str | None = Field(None, max_length=1024)
    candidate: CandidateIn
    hr: HrIn | None = None
    ats: AtsIn | None = None


class PlatformEventIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    event_id: str = Field(min_length=1, max_length=128)
    type: EventType
    occurred_at: EventTime
    interview: InterviewIn
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at")
    @classmethod
    def _not_ahead(cls, value: datetime, info: ValidationInfo) -> datetime:
        """With ``context={"now", "max_ahead"}``: an event from the future (a year-9999
        activity would hold off the idle timeout for ever) is refused."""
        context = info.context or {}
        now, max_ahead = context.get("now"), context.get("max_ahead")
        if isinstance(now, datetime) and isinstance(max_ahead, timedelta) and value > now + max_ahead:
            raise ValueError(f"occurred_at is more than {int(max_ahead.total_seconds())} s ahead of the service clock")
        return value


class AnswerSaved(BaseModel):
    question_no: int = Field(ge=0)
    media_url: str | None = Field(None, max_length=2048)


class HelpRequested(BaseModel):
    reason: str = Field("", max_length=500)
    wants_exit: bool = False


# The typed ``data`` of each event type; the other types carry none (what they send there is ignored).
# The published contract (bot/api/openapi.py) and ``events check`` read the same table.
EVENT_DATA: dict[EventType, type[BaseModel]] = {
    EventType.answer_saved: AnswerSaved,
    EventType.help_requested: HelpRequested,
}


OPEN = OPEN_INTERVIEW_STATUSES


# Attempts of one event's transaction when a concurrent one breaks a unique key (nothing is lost).
APPLY_ATTEMPTS = 3


def typed_data(event: PlatformEventIn) -> tuple[AnswerSaved | None, HelpRequested | None]:
    """The event's typed ``data`` by ``EVENT_DATA`` (``ValidationError`` when it does not fit its type)."""
    typed = EVENT_DATA[event.type].model_validate(event.data) if event.type in EVENT_DATA else None
    answer = typed if isinstance(typed, AnswerSaved) else None
    help_req = typed if isinstance(typed, HelpRequested) else None
    return answer, help_req


def stored_event(payload: dict[str, Any]) -> PlatformEventIn:
    """An event as the intake stored it (validated, then dumped to JSON, before it was answered)."""
    return PlatformEventIn.model_validate(payload)


async def apply_event(core: Core, event: PlatformEventIn) -> bool:
    """Apply one event in its own transaction. False when this event_id was applied before.

    A concurrent transaction that wins a unique key (a new interview or candidate) makes it apply
    again on top of that one, up to ``APPLY_ATTEMPTS`` times.
    """
    typed_data(event)  # bad input changes nothing
    for attempt in range(1, APPLY_ATTEMPTS + 1):
        try:
            async with core.sessions() as session:
                applied = await apply_events(session, core, [event], core.clock.now())
                await session.commit()
        except IntegrityError as exc:  # a concurrent transaction won a unique key: apply again on top of it
            if attempt == APPLY_ATTEMPTS:
                raise
            log.info("event %s met a concurrent write, applying again: %s", event.event_id, exc.orig)
            continue
        if repo.queued_notices(session):
            core.wake_outbox()
        return bool(applied)
    raise AssertionError("unreachable")


# How long a chat lookup that found nothing waits for the platform events accepted before it.
CATCH_UP_SECONDS = 3.0
CATCH_UP_POLL = 0.05


async def caught_up(core: Core, *, most: float = CATCH_UP_SECONDS) -> bool:
    """Wait until the platform events stored so far are applied (by any replica), at most ``most``
    seconds: an accepted event is answered at once and applied a moment later, so an HR's command
    that names its interview in that moment would find nothing. True when events were waiting and
    are now applied (look again), False when none were waiting or the wait ran out. Events waiting
    for a retry after a failure are not waited for."""
    async with core.reads() as session:
        span = await repo.first_and_last_waiting(session, source=PLATFORM_EVENTS, now=core.clock.now())
    if span is None:
        return False
    last = span[1]
    deadline = time.monotonic() + most
    while time.monotonic() < deadline:
        await asyncio.sleep(CATCH_UP_POLL)
        async with core.reads() as session:
            span = await repo.first_and_last_waiting(session, source=PLATFORM_EVENTS, now=core.clock.now())
        if span is None or span[0] > last:
            return True
    log.info("platform events stored before a chat lookup were not applied within %.1fs", most)
    return False


T = TypeVar("T")


async def found_once_applied(core: Core, look: Callable[[], Awaitable[T]], fits: Callable[[T], bool] = bool) -> T:
    """What ``look()`` finds; when that does not ``fit`` (nothing, or nothing in the wanted state)
    while platform events accepted just before were still being applied (``caught_up``), looked up
    again once they are: the interview an event announced a moment ago is found, not denied. The
    one rule of chat lookups (``handlers.common``) and the admin API's reads by interview id."""
    found = await look()
    if not fits(found) and await caught_up(core):
        found = await look()
    return found


async def apply_events(
    session: AsyncSession,
    core: Core,
    events: Sequence[PlatformEventIn],
    now: datetime,
    payloads: Sequence[dict[str, Any]] | None = None,
) -> set[str]:
    """Apply events in the session, in the order given (per interview), each event id once; not
    committed. The event ids applied now (the others were applied before: nothing changes).
    ``payloads``: the events as received, recorded with them (default: as read).

    Every event is recorded first (``platform_event``, one ``INSERT … ON CONFLICT DO NOTHING``):
    an event id found there was applied before and is skipped, so a batch applied again after a
    crash changes nothing twice. An interview whose events here are all ``interview.activity``
    and change nothing but the last activity (a heartbeat) costs one UPDATE for all of them, with
    the latest time; the events of any other interview are applied one by one, in order, with the
    interview row locked (``_upsert``), as they always were.
    """
    seen: set[str] = set()
    raw = payloads if payloads is not None else [e.model_dump(mode="json") for e in events]
    unique: list[PlatformEventIn] = []
    recorded: list[dict[str, Any]] = []  # each event as received (``payloads``), else as read
    for event, payload in zip(events, raw, strict=True):
        if event.event_id not in seen:
            seen.add(event.event_id)
            typed_data(event)
            unique.append(event)
            recorded.append(payload)
    new = await _record(session, unique, recorded, now)
    fresh = [e for e in unique if e.event_id in new]
    cheap = await heartbeat_interviews(session, fresh)
    await _move_last_activity(session, [e for e in fresh if e.interview.id in cheap], now)
    full = [e for e in fresh if e.interview.id not in cheap]
    loaded = await _load(session, [e.interview for e in full], now) if full else None
    for event in full:
        assert loaded is not None
        answer, help_req = typed_data(event)
        interview, candidate = _upsert(loaded, event.interview, now)
        if event.type not in _IN_MEMORY:
            await session.flush()  # what it runs may read the interview with statements of its own
        await _apply(session, core, event, interview, candidate, now, answer, help_req)
        if event.type in (EventType.scheduled, EventType.started):  # plan, move or add reminders
            assert interview.id is not None
            known = loaded.reminders.get(interview.id, {} if event.interview.id in loaded.created else None)
            loaded.reminders[interview.id] = await reminders.sync_reminders(
                session, core, interview, now, existing=known
            )
    return new


# Events whose application changes only loaded rows and adds rows (flushed together at the end).
_IN_MEMORY = frozenset({EventType.scheduled, EventType.started, EventType.activity, EventType.answer_saved})


async def heartbeat_interviews(session: AsyncSession, events: Sequence[PlatformEventIn]) -> set[str]:
    """The interviews (platform ids) whose events among ``events`` are all heartbeats:
    ``interview.activity`` of a stored interview that would change nothing but its last activity."""
    by_interview: dict[str, list[PlatformEventIn]] = {}
    for event in events:
        by_interview.setdefault(event.interview.id, []).append(event)
    beats = [pid for pid, evs in by_interview.items() if all(e.type is EventType.activity for e in evs)]
    facts = await repo.interview_facts(session, platform_ids=beats)
    return {
        pid for pid in beats if pid in facts and all(_only_beat(facts[pid], e.interview) for e in by_interview[pid])
    }


async def apply_heartbeats(
    session: AsyncSession, events: Sequence[PlatformEventIn], payloads: Sequence[dict[str, Any]], now: datetime
) -> set[str]:
    """Apply heartbeats (events of ``heartbeat_interviews``, each event id once, as received in
    ``payloads``) in the session: recorded, and each interview's last activity moved to its latest;
    not committed. The event ids applied now (the others were applied before)."""
    new = await _record(session, events, payloads, now)
    await _move_last_activity(session, [e for e in events if e.event_id in new], now)
    return new


async def _record(
    session: AsyncSession, events: Sequence[PlatformEventIn], payloads: Sequence[dict[str, Any]], now: datetime
) -> set[str]:
    """Record events as applied (``platform_event``, one statement); the ids not recorded before."""
    return await repo.insert_platform_events(
        session,
        [
            {
                "event_id": e.event_id,
                "type": e.type.value,
                "interview_platform_id": e.interview.id,
                "occurred_at": e.occurred_at,
                "received_at": now,
                "payload": payload,
            }
            for e, payload in zip(events, payloads, strict=True)
        ],
    )


async def _move_last_activity(session: AsyncSession, beats: Sequence[PlatformEventIn], now: datetime) -> None:
    latest: dict[str, datetime] = {}
    for event in beats:
        pid = event.interview.id
        latest[pid] = max(event.occurred_at, latest.get(pid, event.occurred_at))
    await repo.move_last_activity(session, latest=latest, now=now)


def _only_beat(facts: repo.InterviewFacts, data: InterviewIn) -> bool:
    """Whether applying these interview fields (as ``_upsert`` does) would change nothing."""
    return (
        (not data.position or data.position == facts.position)
        and (not data.join_url or data.join_url == facts.join_url)
        and (data.hr is None or (data.hr.platform, data.hr.user_id) == facts.hr)
        and (data.scheduled_at is None or data.scheduled_at == facts.scheduled_at)
        and (not data.candidate.mobile or data.candidate.mobile == facts.mobile)
        and (not data.candidate.email or data.candidate.email == facts.email)
    )


@dataclass
class _Loaded:
    """The interviews of a batch's events (locked) and their candidates, loaded together."""

    interviews: dict[str, Interview]
    candidates: dict[int, Candidate]
    # Interviews created by this transaction: they have no reminders yet.
    created: set[str]
    # Reminder rows by interview id and kind, as this transaction last left them.
    reminders: dict[int, dict[str, Reminder]]


async def _load(session: AsyncSession, datas: Sequence[InterviewIn], now: datetime) -> _Loaded:
    """Every interview of ``datas`` (the first data of each), locked for this transaction, with its
    candidate; created on first sight, in a few statements for the whole batch: one lock query,
    one candidate lookup, one INSERT of the new candidates and one of the new interviews (a
    concurrent transaction that creates one first wins, and its candidate is the one)."""
    firsts: dict[str, InterviewIn] = {}
    for data in datas:
        firsts.setdefault(data.id, data)
    interviews = await repo.lock_interviews(session, platform_ids=list(firsts))
    missing = [data for pid, data in firsts.items() if pid not in interviews]
    created: set[str] = set()
    if missing:
        known = await repo.candidates_matching(
            session,
            mobiles=[d.candidate.mobile for d in missing if d.candidate.mobile],
            emails=[d.candidate.email for d in missing if d.candidate.email],
        )
        fresh: list[Candidate] = []
        chosen: dict[str, Candidate] = {}
        for data in missing:  # find_candidate's rule, over the stored ones and those created here
            person = data.candidate
            match = next(
                (
                    c
                    for c in (*known, *fresh)
                    if c.name == person.name
                    and ((person.mobile and c.mobile == person.mobile) or (person.email and c.email == person.email))
                ),
                None,
            )
            if match is None:
                match = Candidate(
                    name=person.name, mobile=person.mobile, email=person.email, created_at=now, updated_at=now
                )
                fresh.append(match)
            chosen[data.id] = match
        if fresh:
            session.add_all(fresh)
            await session.flush()
        rows = []
        for data in missing:
            candidate_id = chosen[data.id].id
            assert candidate_id is not None
            row = Interview(platform_id=data.id, candidate_id=candidate_id, created_at=now, updated_at=now)
            _fill(row, data)  # as _upsert would set them
            rows.append(row.model_dump(exclude={"id"}))
        created = await repo.insert_interviews_or_nothing(session, rows)
        lost = [c for c in fresh if not any(chosen[pid] is c for pid in created)]
        for unused in lost:  # a concurrent event created that interview first
            await session.delete(unused)
        if lost:
            await session.flush()
        interviews.update(await repo.lock_interviews(session, platform_ids=[d.id for d in missing]))
    candidates = await repo.candidates_by_id(session, ids=[iv.candidate_id for iv in interviews.values()])
    return _Loaded(interviews, candidates, created, {})


def _upsert(loaded: _Loaded, data: InterviewIn, now: datetime) -> tuple[Interview, Candidate]:
    """The event's interview and candidate (``_load``), with the fields the event carries."""
    interview = loaded.interviews[data.id]
    candidate = loaded.candidates[interview.candidate_id]
    if data.id not in loaded.created:
        # Contact details may be corrected by the platform later.
        candidate.mobile = data.candidate.mobile or candidate.mobile
        candidate.email = data.candidate.email or candidate.email
    _fill(interview, data)
    interview.updated_at = now
    return interview, candidate


def _fill(interview: Interview, data: InterviewIn) -> None:
    """The interview fields an event carries (those it leaves out stay as they are)."""
    interview.position = data.position or interview.position
    interview.join_url = data.join_url or interview.join_url
    if data.hr is not None:
        interview.hr_platform, interview.hr_user_id = data.hr.platform, data.hr.user_id
    if data.scheduled_at is not None:
        interview.scheduled_at = data.scheduled_at
    if data.ats is not None:
        interview.ats = data.ats.model_dump(exclude_none=True)


async def _apply(
    session: AsyncSession,
    core: Core,
    event: PlatformEventIn,
    interview: Interview,
    candidate: Candidate,
    now: datetime,
    answer: AnswerSaved | None,
    help_req: HelpRequested | None,
) -> None:
    at = event.occurred_at
    is_open = interview.status in OPEN
    pipeline_before = candidate.pipeline_status
    detail: dict[str, Any] = {"event_id": event.event_id}
    match event.type:
        case EventType.scheduled:
            if is_open:
                candidate.pipeline_status = Pipeline.pending.value
        case EventType.started:
            if is_open:
                interview.status = InterviewStatus.in_progress.value
                interview.started_at = interview.started_at or at
                interview.last_activity_at = at
                candidate.pipeline_status = Pipeline.interviewing.value
        case EventType.activity:
            if is_open:
                interview.last_activity_at = max(at, interview.last_activity_at or at)
        case EventType.answer_saved:
            assert answer is not None
            answered = [a for a in interview.progress.get("answered", []) if a.get("question_no") != answer.question_no]
            answered.append({"question_no": answer.question_no, "media_url": answer.media_url, "at": at.isoformat()})
            answered.sort(key=lambda a: a["question_no"])
            # Reassign (not mutate) so the JSON column is written.
            interview.progress = {**interview.progress, "answered": answered}
            if is_open:
                interview.last_activity_at = max(at, interview.last_activity_at or at)
            detail["question_no"] = answer.question_no
        case EventType.completed:
            if is_open:
                interview.status = InterviewStatus.completed.value
                interview.ended_at = at
                candidate.pipeline_status = Pipeline.done.value
                await lifecycle.interview_ended(session, interview=interview, actor="platform", now=now)
        case EventType.help_requested:
            assert help_req is not None
            detail.update(reason=help_req.reason, wants_exit=help_req.wants_exit)
            await help_requests.open_help_request(
                session,
                core,
                interview=interview,
                candidate=candidate,
                event_id=event.event_id,
                reason=help_req.reason,
                wants_exit=help_req.wants_exit,
                now=now,
            )
    if event.type is not EventType.activity:
        repo.audit(
            session,
            at=now,
            actor="platform",
            action=event.type.value,
            interview_id=interview.id,
            detail=detail,
        )
    await outbound.pipeline_changed(
        session,
        core,
        interview=interview,
        candidate=candidate,
        previous=pipeline_before,
        operator="platform",
        source="platform",
        now=now,
    )


@dataclass(frozen=True)
class Problem:
    """One thing the service would refuse in an event: where (``interview.candidate.name``) and why."""

    path: str
    message: str
    code: str


def event_problems(data: Any, *, now: datetime | None = None, max_ahead: timedelta | None = None) -> list[Problem]:
    """Everything ``POST /api/platform/events`` would refuse in this parsed body, by the same models
    (empty when it would be taken). ``now`` and ``max_ahead``: refuse events from the future, as the
    service does."""
    if not isinstance(data, dict):
        return [Problem("", f"expected a JSON object, got {type(data).__name__}", "not_an_object")]
    known = [t.value for t in EventType]
    if data.get("type") not in known:
        return [Problem("type", f"unknown event type {data.get('type')!r}; known: {', '.join(known)}", "unknown_type")]
    context = {"now": now, "max_ahead": max_ahead} if now is not None and max_ahead is not None else None
    try:
        PlatformEventIn.model_validate(data, context=context)
    except ValidationError as exc:
        found = _problems(exc)
    else:
        found = []
    # The typed data too, even when the rest is wrong: a vendor hears of everything at once.
    model = EVENT_DATA.get(EventType(data["type"]))
    body = data.get("data", {})
    if model is not None and isinstance(body, dict):
        try:
            model.model_validate(body)
        except ValidationError as exc:
            found += _problems(exc, prefix=("data",))
    return found


def _problems(exc: ValidationError, prefix: tuple[str, ...] = ()) -> list[Problem]:
    return [
        Problem(".".join(str(p) for p in (*prefix, *e["loc"])), e["msg"], e["type"])
        for e in exc.errors(include_url=False)
    ]
