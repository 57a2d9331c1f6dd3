"""Tables. Families follow the fastapi template: ``XBase`` fields, ``X(table=True)``."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import AwareDateTime, JSONDoc


class Role(StrEnum):
    admin = "admin"
    manager = "manager"
    hr = "hr"


class InterviewStatus(StrEnum):
    scheduled = "scheduled"
    in_progress = "in_progress"
    completed = "completed"
    terminated = "terminated"


# Interviews that may still be terminated.
OPEN_INTERVIEW_STATUSES = (InterviewStatus.scheduled.value, InterviewStatus.in_progress.value)


class Pipeline(StrEnum):
    """Recruiting pipeline status, shown to HR in Chinese."""

    pending = "待面试"
    interviewing = "面试中"
    done = "已完成"
    incomplete = "未完成"
    redo = "需要重新面试"


class NoticeStatus(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    dead = "dead"
    # Replaced, before it went out, by a newer notice for the same interview (bot/services/notices.py).
    superseded = "superseded"
    # Withdrawn before it went out: the interview ended, so what it says can no longer happen
    # (a reminder, the operation guide; bot/services/lifecycle.py).
    cancelled = "cancelled"


def _dt(**kw: Any) -> Any:
    return Field(sa_type=AwareDateTime, **kw)


def _json(default_factory: Any) -> Any:
    return Field(default_factory=default_factory, sa_column_kwargs={}, sa_type=JSONDoc)


class Person(SQLModel, table=True):
    """A colleague known to the bot: HR, manager or admin on one platform."""

    __tablename__ = "person"
    __table_args__ = (UniqueConstraint("platform", "user_id", name="uq_person_platform_user"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    user_id: str = Field(max_length=128)
    name: str = Field(max_length=64)
    role: str = Field(max_length=16)
    mobile: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    created_at: datetime = _dt()

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.user_id}"


class Candidate(SQLModel, table=True):
    __tablename__ = "candidate"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, index=True)
    mobile: str | None = Field(default=None, max_length=32, index=True)
    email: str | None = Field(default=None, max_length=254)
    # WeChat customer-service (微信客服) external_userid, once the candidate confirmed their mobile there.
    kf_contact: str | None = Field(default=None, max_length=128)
    pipeline_status: str = Field(default=Pipeline.pending.value, max_length=16)
    created_at: datetime = _dt()
    updated_at: datetime = _dt()


class Interview(SQLModel, table=True):
    __tablename__ = "interview"
    # The idle-timeout sweep: in-progress interviews by last activity.
    __table_args__ = (Index("ix_interview_idle", "status", "last_activity_at"),)

    id: int | None = Field(default=None, primary_key=True)
    platform_id: str = Field(max_length=128, unique=True)
    candidate_id: int = Field(foreign_key="candidate.id", index=True)
    position: str = Field(default="", max_length=128)
    join_url: str | None = Field(default=None, max_length=1024)
    status: str = Field(default=InterviewStatus.scheduled.value, max_length=16, index=True)
    hr_platform: str | None = Field(default=None, max_length=32)
    hr_user_id: str | None = Field(default=None, max_length=128)
    scheduled_at: datetime | None = _dt(default=None)
    started_at: datetime | None = _dt(default=None)
    last_activity_at: datetime | None = _dt(default=None)
    ended_at: datetime | None = _dt(default=None)
    # {"answered": [{"question_no": 1, "media_url": "...", "at": "..."}]}
    progress: dict[str, Any] = _json(lambda: {"answered": []})
    # Set while one operator's termination is calling the platform; cleared on failure.
    terminating_by: str | None = Field(default=None, max_length=160)
    terminating_since: datetime | None = _dt(default=None)
    # 1, then +1 each time a terminated interview is rescheduled (reopened); one exit record per attempt.
    attempt: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    # The candidate's application in the company's recruiting system, from the platform's event:
    # {"system": ..., "application_id": ..., "external_application_id": ...} (bot.services.ats).
    ats: dict[str, Any] | None = Field(default=None, sa_type=JSONDoc, nullable=True)
    created_at: datetime = _dt()
    updated_at: datetime = _dt()

    @property
    def attempt_key(self) -> str:
        """``id`` for the first attempt, ``id.n`` after a reopen: for per-attempt dedupe keys."""
        return str(self.id) if self.attempt == 1 else f"{self.id}.{self.attempt}"

    @property
    def hr_key(self) -> str | None:
        if self.hr_platform and self.hr_user_id:
            return f"{self.hr_platform}:{self.hr_user_id}"
        return None

    @property
    def answered_count(self) -> int:
        return len(self.progress.get("answered", []))


class ReasonCode(StrEnum):
    """Codes of the reasons code refers to; their names and synonyms may be edited by admins."""

    candidate_quit = "candidate_quit"
    system_failure = "system_failure"
    unfamiliar = "unfamiliar"
    process_change = "process_change"
    idle_timeout = "idle_timeout"
    # For exits no other reason fits; the words typed are kept in the exit record's detail.
    other = "other"


class ExitReason(SQLModel, table=True):
    """Configured exit reasons; ``outcome`` is the pipeline status they lead to."""

    __tablename__ = "exit_reason"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=32, unique=True)
    synonyms: list[str] = _json(list)
    outcome: str = Field(max_length=16)
    sort_order: int = Field(default=0)
    active: bool = Field(default=True)


class ExitRecord(SQLModel, table=True):
    """Why, when and by whom an interview ended early. One per interview attempt."""

    __tablename__ = "exit_record"
    __table_args__ = (
        UniqueConstraint("interview_id", "attempt", name="uq_exit_record_interview_attempt"),
        # Daily counts by reason read only this index.
        Index("ix_exit_record_at_reason", "at", "reason", "source"),
    )

    id: int | None = Field(default=None, primary_key=True)
    interview_id: int = Field(foreign_key="interview.id")
    attempt: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    reason_code: str = Field(max_length=32, index=True)
    reason: str = Field(max_length=32)
    detail: str = Field(default="", max_length=500)
    operator: str = Field(max_length=160)
    source: str = Field(max_length=32)
    at: datetime = _dt(index=True)
    progress_snapshot: dict[str, Any] = _json(dict)


class Todo(SQLModel, table=True):
    __tablename__ = "todo"
    __table_args__ = (
        Index("ix_todo_open", "done", "assignee"),
        # An interview's timeline, a page at a time (storage/repos/timeline.py).
        Index("ix_todo_interview_time", "interview_id", "created_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    assignee: str = Field(max_length=160, index=True)
    interview_id: int | None = Field(default=None, foreign_key="interview.id", index=True)
    title: str = Field(max_length=200)
    # What the to-do is about, when something closes it by itself: "help:<event id>" for a
    # candidate's 求助 (closed when the request is answered or its interview ends).
    ref: str | None = Field(default=None, max_length=200, index=True)
    done: bool = Field(default=False)
    created_at: datetime = _dt()
    done_at: datetime | None = _dt(default=None)
    # Who closed it ("<platform>:<user_id>", "system", "platform").
    done_by: str | None = Field(default=None, max_length=160)


class Notice(SQLModel, table=True):
    """Outbox row: one message to one recipient on one channel."""

    __tablename__ = "notice"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_notice_dedupe_key"),
        Index("ix_notice_due", "status", "next_attempt_at"),
        Index("ix_notice_interview_time", "interview_id", "created_at", "id"),
        # In-order channels look for an earlier unsettled row of the same destination (repos/notices.py).
        Index("ix_notice_destination", "destination", "id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=64)
    channel: str = Field(max_length=32)
    recipient: str = Field(max_length=512)
    interview_id: int | None = Field(default=None, foreign_key="interview.id", index=True)
    subject: str = Field(default="", max_length=200)
    body: str
    html_body: str | None = None
    payload: dict[str, Any] = _json(dict)
    # Pacing bucket: messages to the same destination share it.
    destination: str = Field(default="", max_length=600)
    dedupe_key: str | None = Field(default=None, max_length=200)
    status: str = Field(default=NoticeStatus.pending.value, max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = _dt()
    locked_until: datetime | None = _dt(default=None)
    # The process (``instance/boot``, bot.services.claims) holding or last holding the row.
    claimed_by: str | None = Field(default=None, max_length=160)
    last_error: str | None = Field(default=None, max_length=1000)
    provider_id: str | None = Field(default=None, max_length=200)
    created_at: datetime = _dt()
    sent_at: datetime | None = _dt(default=None)

    @classmethod
    def values(cls, **given: Any) -> dict[str, Any]:
        """The column values of a new row (every column but ``id``, defaults filled in), for a bulk
        INSERT without building the ORM object: a reply per chat message made that a fifth of the
        message's processing."""
        out = {}
        for name, info in cls.model_fields.items():
            if name == "id":
                continue
            if name in given:
                out[name] = given[name]
            elif info.default_factory is not None:
                out[name] = info.default_factory()  # type: ignore[call-arg]
            elif info.is_required():
                raise TypeError(f"Notice.values: {name} is required")
            else:
                out[name] = info.default
        return out


class AttemptResult(StrEnum):
    started = "started"  # written and committed before the provider is called
    sent = "sent"
    failed = "failed"  # will be retried on this channel
    rejected = "rejected"  # permanent failure on this channel: the notice falls back
    unknown = "unknown"  # a 'started' attempt found after a crash: maybe sent, never resent here
    # A 'started' attempt found after a crash on a channel whose receiver drops repeats by their
    # idempotency key (outbound events): maybe sent, and sent again.
    cut_off = "cut_off"


class NoticeAttempt(SQLModel, table=True):
    """One delivery attempt of a notice on one channel, for people and for idempotency.

    ``idem_key`` is the notice's key on that channel (the same for every retry there; given to
    providers that accept one); (notice_id, channel, seq) is unique, so two workers can never
    both record the same try.
    """

    __tablename__ = "notice_attempt"
    __table_args__ = (UniqueConstraint("notice_id", "channel", "seq", name="uq_notice_attempt_try"),)

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="notice.id", index=True)
    channel: str = Field(max_length=32)
    seq: int = Field(default=1)
    recipient: str = Field(default="", max_length=512)
    idem_key: str = Field(max_length=200)
    result: str = Field(default=AttemptResult.started.value, max_length=16)
    provider_id: str | None = Field(default=None, max_length=200)
    error: str | None = Field(default=None, max_length=1000)
    started_at: datetime = _dt()
    finished_at: datetime | None = _dt(default=None)


class AuditEvent(SQLModel, table=True):
    """Append-only log of every state change and refusal."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_interview_time", "interview_id", "at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _dt(index=True)
    actor: str = Field(max_length=160)
    action: str = Field(max_length=64, index=True)
    interview_id: int | None = Field(default=None, index=True)
    chat: str | None = Field(default=None, max_length=200)
    detail: dict[str, Any] = _json(dict)


class PlatformEvent(SQLModel, table=True):
    """Platform events applied, keyed by event_id so redeliveries apply once."""

    __tablename__ = "platform_event"
    __table_args__ = (Index("ix_platform_event_interview_time", "interview_platform_id", "occurred_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=128, unique=True)
    type: str = Field(max_length=64)
    # Read by (interview, time) through ix_platform_event_interview_time.
    interview_platform_id: str = Field(max_length=128)
    # Always set since events are validated (older rows were given their received_at, 0017).
    occurred_at: datetime | None = _dt(default=None)
    received_at: datetime = _dt()
    payload: dict[str, Any] = _json(dict)


class IntakeStatus(StrEnum):
    """Where an inbound item (``intake_item``) stands."""

    received = "received"  # stored and answered; waiting to be processed (again, after a failed try)
    processing = "processing"  # claimed by a worker until ``claimed_until``
    done = "done"  # processed, exactly once
    failed = "failed"  # given up after its last try; ``last_error`` says why


# Items still to be processed (the backlog).
INTAKE_OPEN_STATUSES = (IntakeStatus.received.value, IntakeStatus.processing.value)
# The intake source of platform events; every other source is a chat channel's.
PLATFORM_EVENTS = "platform"


class IntakeItem(SQLModel, table=True):
    """Something that arrived from outside, stored before it was answered, processed once.

    Keyed by its natural key within its source (a platform event's ``event_id``, a chat message's
    id), so a redelivery is found and answered as a duplicate. ``order_key`` orders the items of
    one subject (the interview's platform id, a chat message's sender): they are processed in
    arrival order, by one worker at a time. Sources: ``platform`` (platform events) and each chat
    channel's platform name (``wecom``, ``wecom_kf``, ``dingtalk``, ``feishu``).
    """

    __tablename__ = "intake_item"
    __table_args__ = (
        UniqueConstraint("source", "key", name="uq_intake_item_source_key"),
        Index("ix_intake_item_due", "status", "id"),
        # A worker claims the items of one source (repos/intake.py claim_intake_and_commit).
        Index("ix_intake_item_source_due", "source", "status", "id"),
        # The open items of a source by subject: the store's, the claim's and the backlog's reads.
        Index("ix_intake_item_open", "source", "status", "order_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32)
    key: str = Field(max_length=300)
    order_key: str = Field(default="", max_length=200)
    payload: dict[str, Any] = _json(dict)
    status: str = Field(default=IntakeStatus.received.value, max_length=16)
    received_at: datetime = _dt()
    # The worker (``instance/boot``, bot.services.claims) holding the item, and until when; on a
    # received item ``claimed_until`` is the earliest time of its next try.
    claimed_by: str | None = Field(default=None, max_length=160)
    claimed_until: datetime | None = _dt(default=None)
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, max_length=1000)
    done_at: datetime | None = _dt(default=None)


class InboundMessage(SQLModel, table=True):
    """Dedupe keys of chat messages already taken in (WeCom MsgId, DingTalk msgId, ...)."""

    __tablename__ = "inbound_message"
    __table_args__ = (UniqueConstraint("platform", "dedupe_key", name="uq_inbound_platform_key"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    dedupe_key: str = Field(max_length=300)
    received_at: datetime = _dt(index=True)


class DingTalkSign(SQLModel, table=True):
    """A DingTalk HTTP callback ``sign`` seen, and the one ``msgId`` it may carry.

    DingTalk signs only the timestamp, so a captured pair would otherwise carry any body within
    the window (``DINGTALK_SIGN_WINDOW_SECONDS``). Rows older than the window are purged.
    """

    __tablename__ = "dingtalk_sign"

    sign: str = Field(primary_key=True, max_length=64)
    msg_id: str = Field(max_length=300)
    seen_at: datetime = _dt(index=True)


class ActionState(StrEnum):
    """``PendingAction.state``; every value code sets. Expiry is ``expires_at``, never a state."""

    open = "open"  # waiting for its answer
    answered = "answered"  # a numbered pick or a help request's answer closed it
    confirmed = "confirmed"  # 确认
    cancelled = "cancelled"  # 取消
    running = "running"  # a candidate's exit request being carried out by one replica
    done = "done"  # that exit request carried out (or found not needed)


class PendingAction(SQLModel, table=True):
    """A confirmation prompt waiting for 确认 / 取消 from the person who asked."""

    __tablename__ = "pending_action"

    id: int | None = Field(default=None, primary_key=True)
    requester: str = Field(max_length=160, index=True)
    chat_id: str = Field(max_length=200)
    action: str = Field(max_length=32)
    params: dict[str, Any] = _json(dict)
    created_at: datetime = _dt()
    expires_at: datetime = _dt()
    state: str = Field(default=ActionState.open.value, max_length=16)
    # The chat message that closed it ("<platform>:<message id>"): the same message processed
    # again (a retry after a crash) finds what it already did.
    closed_by: str | None = Field(default=None, max_length=300, index=True)


class KfConversation(SQLModel, table=True):
    """A WeChat user who wrote to the company's customer-service account (微信客服).

    WeCom lets the account answer only within 48 h of the customer's last message and at most
    5 times in that window; a new customer message resets both.
    """

    __tablename__ = "kf_conversation"
    __table_args__ = (UniqueConstraint("external_userid", name="uq_kf_conversation_external_userid"),)

    id: int | None = Field(default=None, primary_key=True)
    external_userid: str = Field(max_length=128)
    open_kfid: str = Field(max_length=128)
    candidate_id: int | None = Field(default=None, foreign_key="candidate.id", index=True)
    last_customer_msg_at: datetime = _dt()
    replies_in_window: int = Field(default=0)
    created_at: datetime = _dt()


class KfCursor(SQLModel, table=True):
    """The next_cursor of /cgi-bin/kf/sync_msg per customer-service account."""

    __tablename__ = "kf_cursor"

    open_kfid: str = Field(primary_key=True, max_length=128)
    cursor: str = Field(default="", max_length=128)
    updated_at: datetime = _dt()


class SharedToken(SQLModel, table=True):
    """Access tokens shared by replicas (WeCom, DingTalk), keyed by app."""

    __tablename__ = "shared_token"

    key: str = Field(primary_key=True, max_length=200)
    value: str = Field(max_length=2000)
    expires_at: datetime = _dt()
    updated_at: datetime = _dt()


class Lease(SQLModel, table=True):
    """A named lease one process holds while it renews it, e.g. the one long connection to a
    platform that allows a single connection per bot (the others stand by)."""

    __tablename__ = "lease"

    name: str = Field(primary_key=True, max_length=100)
    holder: str = Field(max_length=200)  # "<instance>/<boot id>" (bot.services.claims)
    expires_at: datetime = _dt()
    acquired_at: datetime = _dt()


# --- scheduled work (reminders, daily summary) -----------------------------------


class ReminderKind(StrEnum):
    guide = "guide"  # operation guide, right after scheduling
    before_start = "before_1h"  # an hour (BOT_REMINDER_BEFORE_SECONDS) before the start
    at_start = "at_start"
    after_start = "after_30m"  # half an hour into the interview, while still in progress


class ReminderState(StrEnum):
    pending = "pending"
    claimed = "claimed"
    sent = "sent"
    cancelled = "cancelled"


class Reminder(SQLModel, table=True):
    """A reminder due at ``due_at``; claimed by one replica with a conditional update."""

    __tablename__ = "reminder"
    __table_args__ = (
        UniqueConstraint("interview_id", "kind", name="uq_reminder_interview_kind"),
        Index("ix_reminder_due", "state", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    interview_id: int = Field(foreign_key="interview.id")
    kind: str = Field(max_length=32)
    due_at: datetime = _dt()
    state: str = Field(default=ReminderState.pending.value, max_length=16)
    claimed_by: str | None = Field(default=None, max_length=160)
    claimed_until: datetime | None = _dt(default=None)
    # Why it was cancelled or what was sent (notice id), for people reading the table.
    note: str = Field(default="", max_length=200)
    created_at: datetime = _dt()
    updated_at: datetime = _dt()


class SummaryState(StrEnum):
    claimed = "claimed"
    sent = "sent"


class DailySummary(SQLModel, table=True):
    """One managers' daily summary to one recipient; the unique key makes replicas send it once."""

    __tablename__ = "daily_summary"
    __table_args__ = (UniqueConstraint("day", "recipient", name="uq_daily_summary_day_recipient"),)

    id: int | None = Field(default=None, primary_key=True)
    day: date
    # "wecom:mgr01" for a manager, "robot:wecom_robot" / "robot:dingtalk_robot" for group robots.
    recipient: str = Field(max_length=160)
    state: str = Field(default=SummaryState.claimed.value, max_length=16)
    claimed_by: str = Field(max_length=160)
    claimed_until: datetime = _dt()
    sent_at: datetime | None = _dt(default=None)
    # The chart of exits by reason, served at /charts/<chart_token>.png for DingTalk markdown.
    chart_token: str | None = Field(default=None, max_length=64, unique=True)
    chart_png: bytes | None = Field(default=None, sa_type=LargeBinary)
    note: str = Field(default="", max_length=200)


class InterviewShare(SQLModel, table=True):
    """A manager lets another HR see and act on an interview they do not own."""

    __tablename__ = "interview_share"
    __table_args__ = (UniqueConstraint("interview_id", "person_key", name="uq_interview_share"),)

    id: int | None = Field(default=None, primary_key=True)
    interview_id: int = Field(foreign_key="interview.id", index=True)
    person_key: str = Field(max_length=160, index=True)
    shared_by: str = Field(max_length=160)
    created_at: datetime = _dt()


# --- termination jobs ----------------------------------------------------------


class JobState(StrEnum):
    saving = "saving"  # intent committed; the platform's save not answered yet
    terminating = "terminating"  # saved; the platform's terminate not answered yet
    finishing = "finishing"  # terminated on the platform; our records not written yet
    done = "done"
    failed = "failed"


OPEN_JOB_STATES = (JobState.saving.value, JobState.terminating.value, JobState.finishing.value)


class TerminationJob(SQLModel, table=True):
    """One termination, durable from before the first platform call until the exit record.

    ``open_key`` (``<interview id>:<attempt>``) is set while the job is unfinished and cleared when
    it is done or failed: the unique constraint allows one open job per interview attempt.
    A job whose claim expired, or whose claiming process on this host is gone, is resumed by
    ``sweep.terminations`` from its ``state``; the platform calls repeat their idempotency keys.
    """

    __tablename__ = "termination_job"
    __table_args__ = (
        UniqueConstraint("open_key", name="uq_termination_job_open_key"),
        Index("ix_termination_job_state", "state", "claimed_until"),
    )

    id: int | None = Field(default=None, primary_key=True)
    interview_id: int = Field(foreign_key="interview.id", index=True)
    attempt: int = Field(default=1)
    open_key: str | None = Field(default=None, max_length=64)
    reason_code: str = Field(max_length=32)
    operator: str = Field(max_length=160)
    source: str = Field(max_length=32)
    detail: str = Field(default="", max_length=500)
    chat: str | None = Field(default=None, max_length=200)
    # Who is told the outcome in chat when the job finishes after a crash (``platform:user_id``).
    notify_to: str | None = Field(default=None, max_length=160)
    state: str = Field(default=JobState.saving.value, max_length=16)
    save_result: dict[str, Any] = _json(dict)
    terminate_result: dict[str, Any] = _json(dict)
    error: str | None = Field(default=None, max_length=1000)
    claimed_by: str | None = Field(default=None, max_length=200)
    claimed_until: datetime | None = _dt(default=None)
    resumed: bool = Field(default=False)
    created_at: datetime = _dt()
    updated_at: datetime = _dt()
    finished_at: datetime | None = _dt(default=None)


# --- web console (bot/console) ---------------------------------------------------


class ConsoleLogin(SQLModel, table=True):
    """A one-time console login link; only the SHA-256 of its token is stored.

    ``used_at`` is set by the one conditional update that spends it, so of two replicas (or two
    clicks) opening the same link, one gets a session.
    """

    __tablename__ = "console_login"

    token_hash: str = Field(primary_key=True, max_length=64)
    person_key: str = Field(max_length=160, index=True)
    created_at: datetime = _dt()
    expires_at: datetime = _dt()
    used_at: datetime | None = _dt(default=None)


class ConsoleSession(SQLModel, table=True):
    """A signed-in console browser; the cookie holds the id, the table holds its SHA-256.

    Kept in the database so every replica recognises it; ``csrf`` is the token its forms carry.
    """

    __tablename__ = "console_session"

    id_hash: str = Field(primary_key=True, max_length=64)
    person_key: str = Field(max_length=160, index=True)
    csrf: str = Field(max_length=64)
    created_at: datetime = _dt()
    expires_at: datetime = _dt(index=True)
    ended_at: datetime | None = _dt(default=None)


class PaceMark(SQLModel, table=True):
    """One send to a paced destination (a WeCom member, a group robot, an SMS number), shared by
    replicas: the outbox counts a destination's marks in the platform's window before each send."""

    __tablename__ = "pace_mark"
    __table_args__ = (Index("ix_pace_mark_destination_at", "destination", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    destination: str = Field(max_length=600)
    at: datetime = _dt()


class AtsAction(StrEnum):
    """What an exit does to the candidate's application in a recruiting system (``AtsReasonMap.action``)."""

    record = "record"  # only the AI interview is recorded
    transfer = "transfer"  # the application moves to ``stage_id``
    terminate = "terminate"  # the application is terminated with ``termination_type`` and reasons


class AtsReasonMap(SQLModel, table=True):
    """An admin's mapping from one of our exit reasons (by code) to a recruiting system's own
    terms: the stage to move the application to, or the termination type and reasons to end it with."""

    __tablename__ = "ats_reason_map"

    system: str = Field(primary_key=True, max_length=32)
    reason_code: str = Field(primary_key=True, max_length=32)
    action: str = Field(default=AtsAction.record.value, max_length=16)
    stage_id: str | None = Field(default=None, max_length=64)
    termination_type: int | None = None
    termination_reason_ids: list[str] = _json(list)
    updated_by: str = Field(max_length=160)
    updated_at: datetime = _dt()


class WebhookEndpoint(SQLModel, table=True):
    """A company system that receives signed outbound events (bot/services/outbound.py), managed in
    the console's 系统 page; endpoints from BOT_WEBHOOK_URLS are not rows."""

    __tablename__ = "webhook_endpoint"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=500)
    # The HMAC key of its signatures (it must be usable, so it is stored as given).
    secret: str = Field(max_length=200)
    # Whether events to it carry the candidate's mobile and email.
    include_contacts: bool = Field(default=False)
    enabled: bool = Field(default=True)
    created_by: str = Field(default="", max_length=160)
    created_at: datetime = _dt()
