"""Outbound events: what the company's systems (recruiting system, spreadsheet automation) hear of.

When an exit is recorded (the event carries the pipeline status it leads to; no second event for that
change), when a pipeline status changes for another reason, when an interview is rescheduled and when
a candidate asks for help, one outbox row per configured endpoint is added to the caller's
transaction (so the event exists exactly when the change does). Endpoints: each URL of
BOT_WEBHOOK_URLS (signed with BOT_WEBHOOK_SECRET; contacts only with BOT_WEBHOOK_INCLUDE_CONTACTS)
and each enabled ``webhook_endpoint`` row (its own secret and contacts mark), managed in the
console's 系统 page. ``bot/webhook_client.py`` sends them: signed, ``Idempotency-Key`` = event id,
at least once, one interview's events to one endpoint in order (the destination of a row).

The payloads are the pydantic models below; ``OUTBOUND_EVENTS`` lists them all (the published
contract describes them as webhooks).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.delivery import Audience, NoticeKind
from bot.services.context import Core
from bot.services.errors import ServiceError, refusal
from bot.webhook_client import CHANNEL, Endpoint, Resolve
from storage import repo
from storage.models import Candidate, ExitReason, ExitRecord, Interview, Notice, WebhookEndpoint

log = logging.getLogger(__name__)

URL_MAX = 500


# --- the payloads -----------------------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutboundInterview(_Out):
    id: str = Field(description="The interview's id on the AI-interview platform")
    attempt: int = Field(description="1, then +1 each time a terminated interview is rescheduled")
    position: str
    status: str = Field(description="scheduled, in_progress, completed or terminated")
    scheduled_at: datetime | None
    hr: str | None = Field(description="The HR owner as <platform>:<user id>")


class Contacts(_Out):
    mobile: str | None
    email: str | None


class OutboundCandidate(_Out):
    name: str
    pipeline_status: str = Field(description="待面试, 面试中, 已完成, 未完成 or 需要重新面试, after the change")
    contacts: Contacts | None = Field(
        None, description="Only for endpoints marked to receive contacts; otherwise absent (null)"
    )


class PipelineChange(_Out):
    previous: str
    current: str


class OutboundReason(_Out):
    code: str = Field(description="Stable code of the exit reason (the name is editable)")
    name: str
    outcome: str = Field(description="The pipeline status this reason leads to")


class OutboundExit(_Out):
    reason: OutboundReason
    detail: str = Field(description="The operator's own words, if any")
    answered: int = Field(description="Questions answered before the exit")
    platform_called: bool = Field(description="False when no platform is connected: recorded here only")
    at: datetime


class OutboundHelp(_Out):
    reason: str
    wants_exit: bool


class _Event(_Out):
    event_id: str = Field(description="Unique per event; also the Idempotency-Key header")
    occurred_at: datetime
    interview: OutboundInterview
    candidate: OutboundCandidate
    operator: str = Field(description="Who did it: <platform>:<user id>, system, platform or candidate")
    source: str = Field(description="Where: chat, console, api, timeout, help, platform, candidate, …")


class InterviewTerminated(_Event):
    """An exit was recorded; ``pipeline`` is the status it leads to (no separate pipeline event)."""

    type: Literal["interview.terminated"] = "interview.terminated"
    exit: OutboundExit
    pipeline: PipelineChange


class PipelineStatusChanged(_Event):
    """A candidate's pipeline status changed for a reason other than an exit."""

    type: Literal["candidate.pipeline_status_changed"] = "candidate.pipeline_status_changed"
    pipeline: PipelineChange


class InterviewRescheduled(_Event):
    """An interview got a new time (``reopened``: it had been terminated and starts a new attempt)."""

    type: Literal["interview.rescheduled"] = "interview.rescheduled"
    previous_scheduled_at: datetime | None
    scheduled_at: datetime
    reopened: bool


class CandidateAskedForHelp(_Event):
    """A candidate asked for help (``wants_exit``: they want to stop)."""

    type: Literal["interview.help_requested"] = "interview.help_requested"
    help: OutboundHelp


OUTBOUND_EVENTS: tuple[type[_Event], ...] = (
    InterviewTerminated,
    PipelineStatusChanged,
    InterviewRescheduled,
    CandidateAskedForHelp,
)
OutboundEvent = Annotated[
    InterviewTerminated | PipelineStatusChanged | InterviewRescheduled | CandidateAskedForHelp,
    Field(discriminator="type"),
]


# --- where they go --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    key: str  # "env-<hash of the URL>" or "ep-<row id>": part of each row's destination and dedupe key
    url: str
    include_contacts: bool
    endpoint_id: int | None  # None: from BOT_WEBHOOK_URLS


def _env_key(url: str) -> str:
    return "env-" + hashlib.sha256(url.encode()).hexdigest()[:16]


async def targets(session: AsyncSession, core: Core) -> list[Target]:
    """Where events go: BOT_WEBHOOK_URLS and the enabled endpoint rows, read once per transaction
    (a batch of platform events may queue an event for each of its interviews)."""
    cached = session.info.get(_TARGETS)
    if cached is not None and cached[0] is session.sync_session.get_transaction():
        return list(cached[1])
    s = core.settings
    out = [Target(_env_key(url), url, s.webhook_include_contacts, None) for url in s.webhook_url_list]
    for row in await repo.webhook_endpoints(session, enabled_only=True):
        assert row.id is not None
        out.append(Target(f"ep-{row.id}", row.url, row.include_contacts, row.id))
    session.info[_TARGETS] = (session.sync_session.get_transaction(), tuple(out))
    return out


_TARGETS = "outbound.targets"


def resolver(core: Core) -> Resolve:
    """Where a queued row goes now: its endpoint's URL and secret, None once it was removed or
    disabled (the row is then a dead letter)."""

    async def resolve(notice: Notice) -> Endpoint | None:
        endpoint_id = (notice.payload or {}).get("endpoint")
        if endpoint_id is None:
            secret = core.settings.webhook_secret
            if notice.recipient not in core.settings.webhook_url_list or secret is None:
                return None
            return Endpoint(notice.recipient, secret.get_secret_value())
        async with core.sessions() as session:
            row = await repo.get_webhook_endpoint(session, endpoint_id=int(endpoint_id))
        return Endpoint(row.url, row.secret) if row is not None and row.enabled else None

    return resolve


# --- queuing, inside the caller's transaction -------------------------------------------------------


def _interview(interview: Interview) -> OutboundInterview:
    return OutboundInterview(
        id=interview.platform_id,
        attempt=interview.attempt,
        position=interview.position,
        status=interview.status,
        scheduled_at=interview.scheduled_at,
        hr=interview.hr_key,
    )


def _candidate(candidate: Candidate, *, contacts: bool) -> OutboundCandidate:
    return OutboundCandidate(
        name=candidate.name,
        pipeline_status=candidate.pipeline_status,
        contacts=Contacts(mobile=candidate.mobile, email=candidate.email) if contacts else None,
    )


async def _queue(
    session: AsyncSession,
    core: Core,
    model: type[_Event],
    *,
    interview: Interview,
    candidate: Candidate,
    operator: str,
    source: str,
    now: datetime,
    **fields: Any,
) -> str | None:
    """One row per endpoint (none when no endpoint is configured); the event id, if queued."""
    to = await targets(session, core)
    if not to:
        return None
    assert interview.id is not None
    event_id = f"evt_{uuid.uuid4().hex}"
    common = {
        "event_id": event_id,
        "occurred_at": now,
        "interview": _interview(interview),
        "operator": operator,
        "source": source,
        **fields,
    }
    for target in to:
        event = model(candidate=_candidate(candidate, contacts=target.include_contacts), **common)
        repo.add_notice(
            session,
            Notice(
                kind=NoticeKind.outbound_event.value,
                channel=CHANNEL,
                recipient=target.url,
                interview_id=interview.id,
                subject=event.type,  # type: ignore[attr-defined]
                body=event.model_dump_json(),
                payload={
                    "audience": Audience.system.value,
                    "event_id": event_id,
                    "event_type": event.type,  # type: ignore[attr-defined]
                    "endpoint": target.endpoint_id,
                },
                # The order key: one interview's events to one endpoint go one after another.
                destination=f"{CHANNEL}:{target.key}:interview:{interview.id}",
                dedupe_key=f"event:{event_id}:{target.key}",
                next_attempt_at=now,
                created_at=now,
            ),
        )
    log.info("outbound event %s (%s) queued for %d endpoint(s)", event_id, model.__name__, len(to))
    return event_id


async def exit_recorded(
    session: AsyncSession,
    core: Core,
    interview: Interview,
    candidate: Candidate,
    record: ExitRecord,
    reason: ExitReason,
    *,
    previous_pipeline: str,
) -> str | None:
    """``interview.terminated``, with the pipeline status the exit leads to."""
    snapshot = record.progress_snapshot
    return await _queue(
        session,
        core,
        InterviewTerminated,
        interview=interview,
        candidate=candidate,
        operator=record.operator,
        source=record.source,
        now=record.at,
        exit=OutboundExit(
            reason=OutboundReason(code=reason.code, name=reason.name, outcome=reason.outcome),
            detail=record.detail,
            answered=len(snapshot.get("answered", [])),
            platform_called=bool(snapshot.get("platform_called")),
            at=record.at,
        ),
        pipeline=PipelineChange(previous=previous_pipeline, current=candidate.pipeline_status),
    )


async def pipeline_changed(
    session: AsyncSession,
    core: Core,
    *,
    interview: Interview,
    candidate: Candidate,
    previous: str,
    operator: str,
    source: str,
    now: datetime,
) -> str | None:
    """``candidate.pipeline_status_changed`` when the status really changed (not for an exit)."""
    if previous == candidate.pipeline_status:
        return None
    return await _queue(
        session,
        core,
        PipelineStatusChanged,
        interview=interview,
        candidate=candidate,
        operator=operator,
        source=source,
        now=now,
        pipeline=PipelineChange(previous=previous, current=candidate.pipeline_status),
    )


async def rescheduled(
    session: AsyncSession,
    core: Core,
    *,
    interview: Interview,
    candidate: Candidate,
    previous_scheduled_at: datetime | None,
    reopened: bool,
    operator: str,
    source: str,
    now: datetime,
) -> str | None:
    """``interview.rescheduled`` (a reopened interview's pipeline status going back to 待面试 is a
    ``pipeline_changed`` event after it)."""
    assert interview.scheduled_at is not None
    return await _queue(
        session,
        core,
        InterviewRescheduled,
        interview=interview,
        candidate=candidate,
        operator=operator,
        source=source,
        now=now,
        previous_scheduled_at=previous_scheduled_at,
        scheduled_at=interview.scheduled_at,
        reopened=reopened,
    )


async def help_requested(
    session: AsyncSession,
    core: Core,
    *,
    interview: Interview,
    candidate: Candidate,
    reason: str,
    wants_exit: bool,
    now: datetime,
) -> str | None:
    """``interview.help_requested``."""
    return await _queue(
        session,
        core,
        CandidateAskedForHelp,
        interview=interview,
        candidate=candidate,
        operator="candidate",
        source="candidate",
        now=now,
        help=OutboundHelp(reason=reason, wants_exit=wants_exit),
    )


# --- endpoints, managed in the console's 系统 page -------------------------------------------------


class EndpointError(ServiceError):
    code = "webhook_endpoint_refused"


@dataclass(frozen=True, slots=True)
class EndpointView:
    id: int | None  # None: from BOT_WEBHOOK_URLS (changed in the settings, not here)
    url: str
    include_contacts: bool
    enabled: bool
    secret_hint: str  # the secret's first characters, for telling endpoints apart


async def list_endpoints(core: Core) -> list[EndpointView]:
    s = core.settings
    out = [EndpointView(None, url, s.webhook_include_contacts, True, "") for url in s.webhook_url_list]
    async with core.sessions() as session:
        for row in await repo.webhook_endpoints(session):
            out.append(EndpointView(row.id, row.url, row.include_contacts, row.enabled, row.secret[:6]))
    return out


def _check_url(core: Core, url: str) -> str:
    url = url.strip()
    if not url.startswith(("http://", "https://")) or len(url) > URL_MAX or any(c.isspace() for c in url):
        raise EndpointError(refusal(core, "webhook_bad_url", limit=URL_MAX))
    return url


async def add_endpoint(
    core: Core, *, url: str, include_contacts: bool, actor: str, source: str
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint with a new secret (returned once, for the admin to give the receiving system)."""
    url = _check_url(core, url)
    secret = secrets.token_hex(32)
    now = core.clock.now()
    async with core.sessions() as session:
        row = repo.add_webhook_endpoint(
            session,
            WebhookEndpoint(
                url=url, secret=secret, include_contacts=include_contacts, created_by=actor, created_at=now
            ),
        )
        await session.flush()
        repo.audit(
            session,
            at=now,
            actor=actor,
            action="webhook_endpoint.added",
            detail={"source": source, "endpoint_id": row.id, "url": url, "include_contacts": include_contacts},
        )
        await session.commit()
        await session.refresh(row)
    return row, secret


async def change_endpoint(
    core: Core, *, endpoint_id: int, op: Literal["enable", "disable", "delete"], actor: str, source: str
) -> None:
    """Enable, disable or delete an endpoint. Rows already queued for one that is disabled or deleted
    become dead letters when their turn comes (retryable once it is enabled again)."""
    now = core.clock.now()
    async with core.sessions() as session:
        row = await repo.get_webhook_endpoint(session, endpoint_id=endpoint_id)
        if row is None:
            exc = EndpointError(refusal(core, "webhook_endpoint_not_found", endpoint_id=endpoint_id))
            exc.http_status = 404
            raise exc
        url = row.url
        if op == "delete":
            await repo.delete_webhook_endpoint(session, row)
        else:
            row.enabled = op == "enable"
        repo.audit(
            session,
            at=now,
            actor=actor,
            action=f"webhook_endpoint.{op}d",
            detail={"source": source, "endpoint_id": endpoint_id, "url": url},
        )
        await session.commit()
