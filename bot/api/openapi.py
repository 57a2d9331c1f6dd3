"""The published contract for platform vendors: an OpenAPI 3.1 document built from the pydantic models
the service validates with, so it cannot drift. Served at ``GET /api/openapi.json`` (no auth) and
committed as ``docs/openapi.json`` (``python -m bot events openapi -o docs/openapi.json``; a test
fails when the committed file differs from what this module builds).

What is in it, each from one place:

- every inbound event type (``bot/services/events.py``: ``PlatformEventIn`` with ``EVENT_DATA`` per
  type) as a discriminated union on ``type``, with an example per type (``EXAMPLES``);
- the signature headers and the time window (``bot/signing.py``, ``PLATFORM_MAX_SKEW_SECONDS``);
- every answer of the events endpoint (``EVENT_ANSWERS``: edit there);
- the calls we make to the platform (``bot/platform_client.py``: save, terminate) and our outbound
  events (``OUTBOUND_EVENTS``) as ``webhooks``;
- the admin API (every route of ``bot/api/admin.py``; a route without an entry in ``ADMIN_API``
  makes building fail).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any, Literal, Union

from aiohttp import web
from pydantic import BaseModel, Field, RootModel, ValidationError, create_model
from pydantic.json_schema import models_json_schema

from bot.api import admin
from bot.keys import CORE
from bot.platform_client import SaveRequest, TerminateRequest
from bot.services import outbound
from bot.services.events import EVENT_DATA, EventType, PlatformEventIn, event_problems
from bot.settings import Settings

routes = web.RouteTableDef()

PATH = "/api/openapi.json"
EVENTS_PATH = "/api/platform/events"
SCHEMA_REF = "#/components/schemas/{model}"
DEFAULT_MAX_SKEW = int(Settings.model_fields["signature_max_skew_seconds"].default)
DEFAULT_MAX_BODY = int(Settings.model_fields["max_body_bytes"].default)

# Outbound events we send to the company's endpoints (BOT_WEBHOOK_URLS and the console's 系统 page),
# one pydantic model each (bot/services/outbound.py), described as webhooks signed like the inbound
# events and carrying Idempotency-Key. Each model has a ``type`` field with a Literal default (it
# names the webhook) and an example in ``json_schema_extra``.
OUTBOUND_EVENTS: tuple[type[BaseModel], ...] = outbound.OUTBOUND_EVENTS

# One example per outbound event (by its type); tests/operations/test_contract.py validates each with its model.
_OUT_BASE: dict[str, Any] = {
    "occurred_at": "2026-03-10T10:05:00+08:00",
    "interview": {
        "id": "iv-1",
        "attempt": 1,
        "position": "Java后端工程师",
        "status": "terminated",
        "scheduled_at": "2026-03-10T10:00:00+08:00",
        "hr": "wecom:hr01",
    },
    "candidate": {"name": "张三", "pipeline_status": "需要重新面试"},
    "operator": "wecom:hr01",
    "source": "chat",
}
OUTBOUND_EXAMPLES: dict[str, dict[str, Any]] = {
    "interview.terminated": {
        **_OUT_BASE,
        "event_id": "evt-out-1",
        "type": "interview.terminated",
        "exit": {
            "reason": {"code": "system_failure", "name": "网络或设备故障", "outcome": "需要重新面试"},
            "detail": "网络太卡了",
            "answered": 2,
            "platform_called": True,
            "at": "2026-03-10T10:05:00+08:00",
        },
        "pipeline": {"previous": "面试中", "current": "需要重新面试"},
    },
    "candidate.pipeline_status_changed": {
        **_OUT_BASE,
        "event_id": "evt-out-2",
        "type": "candidate.pipeline_status_changed",
        "interview": {**_OUT_BASE["interview"], "status": "completed"},
        "candidate": {"name": "张三", "pipeline_status": "已完成"},
        "operator": "platform",
        "source": "platform",
        "pipeline": {"previous": "面试中", "current": "已完成"},
    },
    "interview.rescheduled": {
        **_OUT_BASE,
        "event_id": "evt-out-3",
        "type": "interview.rescheduled",
        "interview": {**_OUT_BASE["interview"], "attempt": 2, "status": "scheduled"},
        "candidate": {"name": "张三", "pipeline_status": "待面试"},
        "previous_scheduled_at": "2026-03-10T10:00:00+08:00",
        "scheduled_at": "2026-03-11T15:00:00+08:00",
        "reopened": True,
    },
    "interview.help_requested": {
        **_OUT_BASE,
        "event_id": "evt-out-4",
        "type": "interview.help_requested",
        "interview": {**_OUT_BASE["interview"], "status": "in_progress"},
        "candidate": {"name": "张三", "pipeline_status": "面试中"},
        "operator": "candidate",
        "source": "platform",
        "help": {"reason": "摄像头打不开", "wants_exit": False},
    },
}


# ---------------------------------------------------------------- idempotency, stated once

INBOUND_IDEMPOTENCY = (
    "**Idempotency (platform → us).** The platform may send any event again, as often as it likes, "
    "whenever it did not get a 2xx answer (timeout, connection error, 5xx, 503): same `event_id`, same body, "
    "re-signed with a fresh `X-Bot-Timestamp`. We recognise a repeat by `event_id` alone: the first delivery "
    "is applied, every later one is answered `200` with `status: duplicate` and changes nothing. So an "
    "`event_id` must be unique per event and never reused for a different one. "
    "A 400, 413 or 422 will be refused again unchanged: fix the event, do not retry it as it is. "
    "A 401 means a wrong secret or a clock more than the window away: fix that, then resend."
)
OUTBOUND_IDEMPOTENCY = (
    "**Idempotency (us → platform and company endpoints).** We may send a call again: on a timeout, a "
    "connection error, a 5xx or a 429 (with backoff), and after our own crash, when the interrupted "
    "work is resumed. Every repeat carries the same `Idempotency-Key` header as the first attempt "
    "(and an outbound event the same `event_id`), re-signed with a fresh timestamp. The receiver "
    "recognises a repeat by that key and answers it with the first result, without doing the work twice."
)


# ---------------------------------------------------------------- inbound events

_INTERVIEW = {
    "id": "iv-1001",
    "position": "Java后端工程师",
    "scheduled_at": "2026-03-02T14:00:00+08:00",
    "join_url": "https://interview.example.com/j/iv-1001",
    "candidate": {"name": "张三", "mobile": "13800001234", "email": "zhangsan@example.com"},
    "hr": {"platform": "wecom", "user_id": "hr01"},
}


def _example(kind: EventType, minute: int, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "event_id": f"evt-iv-1001-{kind.value.split('.')[1]}",
        "type": kind.value,
        "occurred_at": f"2026-03-02T14:{minute:02d}:00+08:00",
        "interview": _INTERVIEW,
        "data": data or {},
    }


# What each event type means to us, and an example of it (a test posts each to the running service).
EVENT_NOTES: dict[EventType, str] = {
    EventType.scheduled: "The interview is planned or moved (again: a reschedule). Plans reminders.",
    EventType.started: "The candidate joined: the interview is in progress (the idle timeout starts).",
    EventType.activity: "The candidate is active (keeps the idle timeout off). Not audited.",
    EventType.answer_saved: "The platform saved one answer (`data.question_no`, `data.media_url`).",
    EventType.completed: "The candidate finished the interview.",
    EventType.help_requested: (
        "The candidate asked for help (`data.reason`); `data.wants_exit` when they ask to stop. "
        "What follows depends on BOT_CANDIDATE_EXIT_POLICY."
    ),
}
EXAMPLES: dict[EventType, dict[str, Any]] = {
    EventType.scheduled: _example(EventType.scheduled, 0),
    EventType.started: _example(EventType.started, 1),
    EventType.activity: _example(EventType.activity, 2),
    EventType.answer_saved: _example(
        EventType.answer_saved, 3, {"question_no": 1, "media_url": "https://oss.example.com/iv-1001/1.mp4"}
    ),
    EventType.help_requested: _example(EventType.help_requested, 4, {"reason": "摄像头打不开", "wants_exit": False}),
    EventType.completed: _example(EventType.completed, 5),
}


def _title(kind: EventType) -> str:
    return "".join(part.title() for part in kind.value.replace(".", "_").split("_")) + "Event"


def _optional(model: type[BaseModel]) -> bool:
    """Whether an event may leave out ``data`` of this model (the service reads a missing one as ``{}``)."""
    try:
        model.model_validate({})
    except ValidationError:
        return False
    return True


def typed_event_models() -> list[type[BaseModel]]:
    """One model per event type: ``PlatformEventIn`` with ``type`` fixed and ``data`` typed (``EVENT_DATA``)."""
    models: list[type[BaseModel]] = []
    for kind in EventType:
        fields: dict[str, Any] = {"type": (Literal[kind.value], ...)}
        data = EVENT_DATA.get(kind)
        if data is not None:
            fields["data"] = (data, Field(default_factory=data) if _optional(data) else ...)
        models.append(create_model(_title(kind), __base__=PlatformEventIn, __doc__=EVENT_NOTES[kind], **fields))
    return models


# ---------------------------------------------------------------- answers (edit here)


class EventTaken(BaseModel):
    """The event is taken; send it no more."""

    status: Literal["accepted", "duplicate"] = Field(
        description="`accepted`: stored durably now, applied moments later in order per interview (kept "
        "through a crash); a read of the interview by its id (admin API, or HR in chat) in that moment waits "
        "up to 3 s for it. `duplicate`: this `event_id` was taken before; nothing changed."
    )
    event_id: str


class FieldProblem(BaseModel):
    loc: str = Field(description="Where, as a dotted path: `interview.candidate.name`, `data.question_no`.")
    msg: str


class ErrorAnswer(BaseModel):
    """A refusal: a stable ``error`` code and a message (Chinese) for people."""

    error: str
    message: str
    details: list[FieldProblem] | None = Field(None, description="422: each field that is wrong.")
    known: list[str] | None = Field(None, description="400 unknown_event_type: the event types we know.")


@dataclass(frozen=True)
class Answer:
    status: str
    description: str
    model: type[BaseModel] | None = None  # None: a plain-text body
    examples: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, Any] = field(default_factory=dict)


def _err(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"value": {"error": code, "message": message, **extra}}


def event_answers(max_skew: int, max_body: int) -> tuple[Answer, ...]:
    """Every answer of ``POST /api/platform/events``."""
    return (
        Answer(
            "200",
            "Taken: `accepted` now (stored; applied in order per interview moments later), or a `duplicate` of "
            "an event taken before. Either way do not send it again.",
            EventTaken,
            {
                "accepted": {"value": {"status": "accepted", "event_id": "evt-iv-1001-scheduled"}},
                "duplicate": {"value": {"status": "duplicate", "event_id": "evt-iv-1001-scheduled"}},
            },
        ),
        Answer(
            "400",
            "The body is not an event: `malformed_json` (not JSON, or NaN/Infinity), `too_deep` (nested over 32 "
            "levels), `nul_character`, `malformed_text` (a string that cannot be encoded), or "
            "`unknown_event_type` (with `known`). Nothing changed; fix it, do not retry it as it is.",
            ErrorAnswer,
            {
                "unknown_event_type": _err(
                    "unknown_event_type", "未知的事件类型: 'interview.exploded'", known=[t.value for t in EventType]
                )
            },
        ),
        Answer(
            "401",
            "`bad_signature`: a signature header is missing, `X-Bot-Timestamp` is not Unix seconds or is more "
            f"than {max_skew} s away from our clock, or the HMAC does not match. Nothing changed.",
            ErrorAnswer,
            {"bad_signature": _err("bad_signature", "签名校验失败: stale timestamp")},
        ),
        Answer(
            "413",
            f"The body is larger than BOT_MAX_BODY_BYTES ({max_body} bytes). Nothing changed.",
        ),
        Answer(
            "422",
            "`invalid_event`: a field is wrong; `details` says where and why. Reasons: a required field missing "
            "(`event_id`, `type`, `occurred_at`, `interview.id`, `interview.candidate.name`), a string too long or "
            "empty, a time without a time zone or outside 1970–2999, `occurred_at` more than "
            f"{max_skew} s ahead of our clock, `data` not matching the event type's schema. Nothing changed.",
            ErrorAnswer,
            {
                "invalid_event": _err(
                    "invalid_event",
                    "事件格式不正确",
                    details=[{"loc": "interview.candidate.name", "msg": "Field required"}],
                )
            },
        ),
        Answer(
            "503",
            "We cannot take the event now; nothing changed: send the same event again later, after "
            "`Retry-After` seconds when the answer carries it. `disabled`: PLATFORM_WEBHOOK_SECRET is not set on "
            "our side.",
            ErrorAnswer,
            {"disabled": _err("disabled", "平台事件接口未启用(未设置 PLATFORM_WEBHOOK_SECRET)")},
            {"Retry-After": {"description": "Seconds to wait before sending again.", "schema": {"type": "integer"}}},
        ),
    )


# Answers of the platform to our calls, and what we make of them (bot/platform_client.success_body).
PLATFORM_CALL_ANSWERS: dict[str, str] = {
    "2XX": 'Success when the body is a JSON object that is not `{"ok": false}` (a 2xx we cannot read is '
    "a failure and is not retried: the work may have been done).",
    "204": "Success (no body).",
    "409": 'With `{"status": "terminated"}`: the interview is already terminated there; counted as success.',
    "429": "Retried with backoff (3 attempts in all, PLATFORM_TIMEOUT_SECONDS each).",
    "5XX": "Retried with backoff, as are timeouts and connection errors; after the last attempt the "
    "termination fails (the person who asked is told) and nothing is recorded as terminated. A termination "
    "our crash interrupted is resumed with the same Idempotency-Key.",
    "default": "Any other answer (4xx, an HTML page, a JSON list) is a refusal: not retried.",
}
OUTBOUND_EVENT_ANSWERS: dict[str, str] = {
    "2XX": "Delivered: we send this event to this endpoint no more.",
    "default": "Not delivered (as are timeouts and connection errors): sent again with backoff, same "
    "`event_id` and `Idempotency-Key`; after the last attempt it is a dead letter in the console's 通知 page, "
    "where 重试 sends it again.",
}


# ---------------------------------------------------------------- admin API (one entry per route)


@dataclass(frozen=True)
class AdminOp:
    summary: str
    description: str = ""
    query: tuple[tuple[str, str, bool], ...] = ()  # name, description, required
    body: type[BaseModel] | None = None
    answers: dict[str, str] = field(default_factory=dict)


_ID = "The platform's interview id."


def _paged(maximum: int, default: int) -> tuple[tuple[str, str, bool], ...]:
    """The query parameters of a paged admin list."""
    return (
        ("limit", f"Page size, 1-{maximum} (default {default}); 400 `bad_limit` otherwise.", False),
        ("cursor", "From the answer's `next` link, for the page after (400 `bad_cursor` when not).", False),
    )


ADMIN_API: dict[tuple[str, str], AdminOp] = {
    ("GET", "/api/interviews"): AdminOp(
        "List interviews",
        "Each: id, position, status, candidate (name, pipeline_status), hr, times, answered.",
        query=(
            ("status", "Only interviews in this status (400 `bad_status` with `known` otherwise).", False),
            *_paged(500, 100),
        ),
        answers={
            "200": '`{"interviews": [...], "next"}`, newest first; `next` is the next page\'s link or null.',
            "400": "`bad_status`, `bad_limit` or `bad_cursor`",
        },
    ),
    ("GET", "/api/interviews/{id}"): AdminOp(
        "One interview",
        "The summary plus progress, exit record, todos, notices and their delivery attempts; each list is its "
        "first page (answers 100, todos and notices 50), `next` has each list's next page and `timeline` the "
        "history's address.",
        answers={"200": "The interview.", "404": "`not_found`"},
    ),
    ("GET", "/api/interviews/{id}/answers"): AdminOp(
        "An interview's saved answers, paged",
        query=(
            ("of", "`progress` (the interview's, default) or `exit` (the exit record's snapshot).", False),
            *_paged(500, 100),
        ),
        answers={
            "200": '`{"answered": [...], "total", "next"}`',
            "400": "`bad_of`, `bad_limit` or `bad_cursor`",
            "404": "`not_found`",
        },
    ),
    ("GET", "/api/interviews/{id}/todos"): AdminOp(
        "An interview's todos, paged (oldest first)",
        query=(*_paged(200, 50),),
        answers={"200": '`{"todos": [...], "next"}`', "400": "`bad_limit` or `bad_cursor`", "404": "`not_found`"},
    ),
    ("GET", "/api/interviews/{id}/notices"): AdminOp(
        "An interview's notices with their attempts, paged (oldest first)",
        query=(*_paged(200, 50),),
        answers={"200": '`{"notices": [...], "next"}`', "400": "`bad_limit` or `bad_cursor`", "404": "`not_found`"},
    ),
    ("GET", "/api/interviews/{id}/timeline"): AdminOp(
        "An interview's history, paged (newest first)",
        "Events, audits, exits, todos, notices with their attempts and reminders, by (time, kind, id).",
        query=(*_paged(200, 50),),
        answers={
            "200": '`{"items": [{"kind", "at", ...}], "next"}`',
            "400": "`bad_limit` or `bad_cursor`",
            "404": "`not_found`",
        },
    ),
    ("POST", "/api/interviews/{id}/terminate"): AdminOp(
        "Terminate an interview",
        "The same termination as from chat (source `admin_api`): with PLATFORM_API_BASE set, saves progress and "
        "terminates on the platform first; records the exit, notifies the candidate, gives HR a todo.",
        body=admin.TerminateIn,
        answers={
            "200": '`{"status": "terminated", "interview", "exit", "todo", "notice"}`',
            "404": "`not_found`",
            "409": "Already ended, or being terminated by someone else (with `exit` when recorded).",
            "422": "`invalid_request`, or an unknown reason (with `choices`).",
            "502": "The platform refused or could not be reached; nothing was recorded as terminated.",
        },
    ),
    ("GET", "/api/reports/exits"): AdminOp(
        "Exit report",
        "Interviews ended early between two days (inclusive), by reason.",
        query=(("from", "First day, YYYY-MM-DD.", True), ("to", "Last day, YYYY-MM-DD.", True)),
        answers={"200": "The report.", "400": "`missing_parameter`, `bad_date` or `bad_range`."},
    ),
    ("GET", "/api/notices"): AdminOp(
        "List notices (the outbox)",
        query=(
            ("status", "Only notices in this status.", False),
            ("kind", "Only notices of this kind.", False),
            *_paged(500, 100),
        ),
        answers={
            "200": '`{"notices": [...], "next"}`, newest first',
            "400": "`bad_status`, `bad_kind`, `bad_limit` or `bad_cursor`.",
        },
    ),
    ("GET", "/api/intake"): AdminOp(
        "List what was taken in (chat messages, platform events)",
        query=(
            ("status", "Only items in this status: received, processing, done or failed (given up on).", False),
            ("source", "Only items of this source: platform, wecom, wecom_kf, dingtalk or feishu.", False),
            *_paged(500, 100),
        ),
        answers={
            "200": '`{"items": [...], "next"}`, newest first; an item\'s payload (the message) is not listed',
            "400": "`bad_status`, `bad_source`, `bad_limit` or `bad_cursor`.",
        },
    ),
}


# ---------------------------------------------------------------- building


def _headers(*, direction: str, max_skew: int, idempotency: bool) -> list[dict[str, Any]]:
    secret = "PLATFORM_WEBHOOK_SECRET" if direction == "in" else "the shared secret"
    params: list[dict[str, Any]] = [
        {
            "name": "X-Bot-Timestamp",
            "in": "header",
            "required": True,
            "description": f"Unix seconds when signed; refused more than {max_skew} s "
            "(PLATFORM_MAX_SKEW_SECONDS) away from the receiver's clock. Fresh on every attempt.",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
            "example": "1772431200",
        },
        {
            "name": "X-Bot-Signature",
            "in": "header",
            "required": True,
            "description": f'Lower-case hex HMAC-SHA256 with {secret} as key over `<X-Bot-Timestamp> + "." + '
            "<raw body bytes>`; compared in constant time.",
            "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
        },
    ]
    if idempotency:
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": True,
                "description": "The same on every attempt of one piece of work; answer a repeat with the "
                "first result without doing the work again.",
                "schema": {"type": "string"},
            }
        )
    return params


def _content(model: type[BaseModel] | None, examples: dict[str, Any] | None = None) -> dict[str, Any]:
    if model is None:
        return {"text/plain": {"schema": {"type": "string"}}}
    media: dict[str, Any] = {"schema": {"$ref": SCHEMA_REF.format(model=model.__name__)}}
    if examples:
        media["examples"] = examples
    return {"application/json": media}


def _responses(answers: dict[str, str]) -> dict[str, Any]:
    return {status: {"description": text} for status, text in answers.items()}


def _outbound_example(model: type[BaseModel]) -> dict[str, Any] | None:
    extra = model.model_config.get("json_schema_extra")
    found = extra.get("examples") if isinstance(extra, dict) else None
    if isinstance(found, list) and found:
        return {"example": {"value": found[0]}}
    example = OUTBOUND_EXAMPLES.get(_webhook_name(model))
    return {"example": {"value": example}} if example is not None else None


def _webhook_name(model: type[BaseModel]) -> str:
    kind = model.model_fields.get("type")
    return str(kind.default) if kind is not None and isinstance(kind.default, str) else model.__name__


def _platform_call(action: str, model: type[BaseModel], max_skew: int, summary: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": f"platform_{action}",
            "summary": summary,
            "description": f"We call `POST {{PLATFORM_API_BASE}}/interviews/{{id}}/{action}`, `{{id}}` the "
            "interview id percent-encoded as one path segment. Signed like the inbound events, with "
            "PLATFORM_WEBHOOK_SECRET. `Idempotency-Key` is "
            f"`{action}-<job id>`.\n\n{OUTBOUND_IDEMPOTENCY}",
            "parameters": _headers(direction="out", max_skew=max_skew, idempotency=True),
            "requestBody": {"required": True, "content": _content(model)},
            "responses": _responses(PLATFORM_CALL_ANSWERS),
        }
    }


def _admin_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in admin.routes:
        assert isinstance(route, web.RouteDef)
        op = ADMIN_API[(route.method, route.path)]  # a new admin route needs its entry here
        params: list[dict[str, Any]] = [
            {"name": name, "in": "query", "required": required, "description": text, "schema": {"type": "string"}}
            for name, text, required in op.query
        ]
        if "{id}" in route.path:
            params.insert(
                0, {"name": "id", "in": "path", "required": True, "description": _ID, "schema": {"type": "string"}}
            )
        answers = {
            **op.answers,
            "401": "No or wrong Bearer token.",
            "503": "`disabled`: BOT_ADMIN_TOKEN is not set.",
        }
        operation: dict[str, Any] = {
            "tags": ["admin"],
            "operationId": route.handler.__name__,
            "summary": op.summary,
            "security": [{"adminToken": []}],
            "responses": _responses(dict(sorted(answers.items()))),
        }
        if op.description:
            operation["description"] = op.description
        if params:
            operation["parameters"] = params
        if op.body is not None:
            operation["requestBody"] = {"required": True, "content": _content(op.body)}
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return paths


def build_openapi(
    *,
    max_skew: int = DEFAULT_MAX_SKEW,
    max_body: int = DEFAULT_MAX_BODY,
    outbound_events: tuple[type[BaseModel], ...] = OUTBOUND_EVENTS,
) -> dict[str, Any]:
    typed = typed_event_models()
    union = Annotated[Union[tuple(typed)], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007
    platform_event = create_model("PlatformEvent", __base__=RootModel[union])  # type: ignore[valid-type]
    platform_event.__doc__ = "One event from the AI-interview platform; `type` says which, and what `data` holds."
    answers = event_answers(max_skew, max_body)
    models: list[type[BaseModel]] = [
        platform_event,
        *typed,
        *(a.model for a in answers if a.model is not None),
        SaveRequest,
        TerminateRequest,
        *(op.body for op in ADMIN_API.values() if op.body is not None),
        *outbound_events,
    ]
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=SCHEMA_REF)
    schemas = dict(sorted(top.get("$defs", {}).items()))
    by_type = {m.model_fields["type"].annotation.__args__[0]: m for m in typed}  # type: ignore[union-attr]
    examples = {}
    for kind in EventType:
        example = EXAMPLES[kind]
        assert not event_problems(example), (kind, event_problems(example))  # each example is a valid event
        by_type[kind.value].model_validate(example)
        examples[kind.value] = {"summary": EVENT_NOTES[kind], "value": example}
    events_op = {
        "tags": ["platform"],
        "operationId": "platform_event",
        "summary": "Send one event from the AI-interview platform",
        "description": "Signed with PLATFORM_WEBHOOK_SECRET (see the headers). One event per request, as JSON "
        "(UTF-8); times carry a time zone. Unknown fields are ignored.\n\n" + INBOUND_IDEMPOTENCY,
        "parameters": _headers(direction="in", max_skew=max_skew, idempotency=False),
        "requestBody": {"required": True, "content": _content(platform_event, examples)},
        "responses": {
            a.status: {
                "description": a.description,
                "content": _content(a.model, a.examples or None),
                **({"headers": a.headers} if a.headers else {}),
            }
            for a in answers
        },
    }
    webhooks: dict[str, Any] = {
        "platformSave": _platform_call("save", SaveRequest, max_skew, "We ask the platform to save the answers"),
        "platformTerminate": _platform_call(
            "terminate", TerminateRequest, max_skew, "We ask the platform to end the interview (after save)"
        ),
    }
    for model in outbound_events:
        name = _webhook_name(model)
        webhooks[name] = {
            "post": {
                "operationId": f"outbound_{name.replace('.', '_')}",
                "summary": (model.__doc__ or name).strip().splitlines()[0],
                "description": "We POST this event to each configured endpoint (BOT_WEBHOOK_URLS or the "
                "console's 系统 page), signed with that endpoint's secret (BOT_WEBHOOK_SECRET by default). "
                "`Idempotency-Key` is the event's id.\n\n" + OUTBOUND_IDEMPOTENCY,
                "parameters": _headers(direction="out", max_skew=max_skew, idempotency=True),
                "requestBody": {"required": True, "content": _content(model, _outbound_example(model))},
                "responses": _responses(OUTBOUND_EVENT_ANSWERS),
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "面试退出助手 — platform contract",
            "version": "1",
            "description": "What an AI-interview platform sends us, what we call on it, and the admin API.\n\n"
            f"{INBOUND_IDEMPOTENCY}\n\n{OUTBOUND_IDEMPOTENCY}",
        },
        "tags": [
            {"name": "platform", "description": "Events from the AI-interview platform."},
            {"name": "admin", "description": "Admin API (Bearer BOT_ADMIN_TOKEN)."},
            {"name": "contract", "description": "This document."},
        ],
        "paths": {
            EVENTS_PATH: {"post": events_op},
            PATH: {
                "get": {
                    "tags": ["contract"],
                    "operationId": "openapi",
                    "summary": "This document (no auth)",
                    "responses": {"200": {"description": "OpenAPI 3.1, JSON."}},
                }
            },
            **_admin_paths(),
        },
        "webhooks": webhooks,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer", "description": "BOT_ADMIN_TOKEN"}},
        },
    }


def render(doc: dict[str, Any]) -> str:
    """The document as committed (docs/openapi.json): stable key order, UTF-8, newline at the end."""
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


@lru_cache(maxsize=4)
def _served(max_skew: int, max_body: int) -> str:
    return render(build_openapi(max_skew=max_skew, max_body=max_body))


@routes.get(PATH)
async def openapi_json(request: web.Request) -> web.Response:
    settings = request.app[CORE].settings
    text = _served(settings.signature_max_skew_seconds, settings.max_body_bytes)
    return web.Response(text=text, content_type="application/json")
