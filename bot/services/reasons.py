"""Matching what a person typed to a configured exit reason."""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.context import Core
from bot.services.errors import ServiceError
from storage import repo
from storage.models import ExitReason, Pipeline, ReasonCode

__all__ = [
    "AUTOMATIC_CODES",
    "OUTCOMES",
    "SYSTEM_CODES",
    "ExitReason",
    "ReasonConflict",
    "ReasonError",
    "ReasonNotFound",
    "ReasonRow",
    "active",
    "add",
    "choices",
    "delete",
    "edit",
    "list_all",
    "match_reason",
    "move",
    "normalize",
    "reorder",
    "shown_detail",
    "split_synonyms",
]

# Characters a hurried typist leaves around a phrase (stripped as a set, either end).
TRAILING_PUNCTUATION = "。.!!??~~,,、"


def normalize(text: str) -> str:
    """Fold full-width forms, drop spaces and trailing punctuation, lower-case."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in folded if not ch.isspace()).strip(TRAILING_PUNCTUATION).lower()


def match_reason(text: str, reasons: Sequence[ExitReason]) -> ExitReason | None:
    """Exact name, code or synonym first; then the longest synonym contained in the text.

    None when nothing fits, or when two reasons' longest phrases found in the text are equally
    long ("网络卡顿,不想面了"): then a person picks, nothing is guessed.
    """
    needle = normalize(text)
    if not needle:
        return None
    for reason in reasons:
        names = {normalize(reason.name), reason.code.lower(), *(normalize(s) for s in reason.synonyms)}
        if needle in names:
            return reason
    longest: dict[int, int] = {}  # reason id -> longest phrase of it in the text
    by_id = {id(reason): reason for reason in reasons}
    for reason in reasons:
        for phrase in (reason.name, *reason.synonyms):
            p = normalize(phrase)
            if p and p in needle:
                longest[id(reason)] = max(longest.get(id(reason), 0), len(p))
    if not longest:
        return None
    best = max(longest.values())
    winners = [key for key, length in longest.items() if length == best]
    return by_id[winners[0]] if len(winners) == 1 else None


def shown_detail(detail: str, *, name: str, code: str) -> str:
    """The words typed, for people who read exit records; "" when they only name the reason."""
    text = detail.strip()
    if not text or normalize(text) in {normalize(name), code.lower()}:
        return ""
    return text


async def active(core: Core) -> Sequence[ExitReason]:
    """The exit reasons offered for a pick, in their configured order."""
    async with core.sessions() as session:
        return await repo.list_reasons(session)


async def choices(core: Core) -> Sequence[ExitReason]:
    """The reasons a person picks from in the console's 终止 form: the active ones except those only
    the service itself observes (``AUTOMATIC_CODES``: 超时未操作 is the idle sweep's)."""
    return [r for r in await active(core) if r.code not in AUTOMATIC_CODES]


# --- administration: the 退出原因 page and ``python -m bot reasons`` --------------------------------
#
# Every read above goes to the database (no cache), so a change committed here is what the next
# chat message matches, in this process and in every other replica.

# The pipeline statuses an exit may lead to (``ExitReason.outcome``).
OUTCOMES: tuple[str, ...] = (Pipeline.incomplete.value, Pipeline.redo.value)
NAME_MAX = 32
SYNONYM_MAX = 32
SYNONYMS_MAX = 50
_CODE = re.compile(r"[a-z][a-z0-9_]{1,31}")


class ReasonError(ServiceError):
    """Why an exit reason was not changed (message in Chinese, from templates/admin/errors.txt.j2)."""

    code = "reason_refused"
    http_status = 400


class ReasonNotFound(ReasonError):
    code = "reason_not_found"
    http_status = 404


class ReasonConflict(ReasonError):
    code = "reason_conflict"
    http_status = 409


@dataclass(frozen=True)
class ReasonRow:
    """One reason as the admin list shows it: its row and how many exit records refer to it."""

    reason: ExitReason
    references: int
    jobs: int = 0  # termination jobs that refer to it (a finished termination has one too)

    @property
    def can_disable(self) -> bool:
        return self.reason.active and self.reason.code not in SYSTEM_CODES

    @property
    def deletable(self) -> bool:
        return not self.builtin and not self.reason.active and not self.references and not self.jobs

    @property
    def builtin(self) -> bool:
        """A default reason code refers to (it cannot be deleted, only disabled)."""
        return self.reason.code in BUILTIN_CODES


BUILTIN_CODES = frozenset(str(code) for code in ReasonCode)
# Reasons the service terminates with by code (idle timeouts; candidate exits no other reason fits):
# they stay enabled, or those terminations would find no reason. They may be renamed.
SYSTEM_CODES = frozenset({str(ReasonCode.idle_timeout), str(ReasonCode.other)})
# Of those, the ones no person picks: the service terminates with them on what it observes itself
# (其他 stays a choice: it is what a person picks when no other reason fits).
AUTOMATIC_CODES = frozenset({str(ReasonCode.idle_timeout)})


def _refuse(core: Core, error: str, cls: type[ReasonError] = ReasonError, **context: Any) -> ReasonError:
    return cls(core.templates.render("admin/errors.txt.j2", error=error, **context), error=error)


async def list_all(core: Core) -> list[ReasonRow]:
    """Every reason, enabled or not, in the configured order, with its reference count."""
    async with core.sessions() as session:
        rows = await repo.list_reasons(session, active_only=False)
        return [ReasonRow(r, *await repo.reason_references(session, code=r.code)) for r in rows]


def _clean_name(core: Core, name: str) -> str:
    cleaned = " ".join(unicodedata.normalize("NFKC", name).split())
    if not cleaned:
        raise _refuse(core, "reason_name_empty")
    if len(cleaned) > NAME_MAX:
        raise _refuse(core, "reason_name_long", limit=NAME_MAX)
    if not normalize(cleaned):
        raise _refuse(core, "reason_name_empty")
    return cleaned


def _clean_synonyms(core: Core, synonyms: Sequence[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for raw in synonyms:
        phrase = " ".join(unicodedata.normalize("NFKC", raw).split())
        key = normalize(phrase)
        if not key:
            continue
        if len(phrase) > SYNONYM_MAX:
            raise _refuse(core, "synonym_long", synonym=phrase, limit=SYNONYM_MAX)
        if key not in seen:
            seen.add(key)
            out.append(phrase)
    if len(out) > SYNONYMS_MAX:
        raise _refuse(core, "synonyms_many", limit=SYNONYMS_MAX)
    return out


def split_synonyms(text: str) -> list[str]:
    """Synonyms as typed in one field: separated by commas (either width), 、, ; or new lines."""
    return [part for part in re.split(r"[,,、;;\n\r]+", text) if part.strip()]


def _check_outcome(core: Core, outcome: str) -> str:
    if outcome not in OUTCOMES:
        raise _refuse(core, "reason_outcome", outcome=outcome, outcomes=OUTCOMES)
    return outcome


def _check_clashes(core: Core, reason: ExitReason, others: Sequence[ExitReason]) -> None:
    """No phrase of ``reason`` may equal another reason's name, code or synonym: chat would
    match the first one silently."""
    mine = {normalize(reason.name): reason.name, **{normalize(s): s for s in reason.synonyms}}
    for other in others:
        if other.code == reason.code:
            continue
        if normalize(other.name) == normalize(reason.name):
            raise _refuse(core, "reason_name_taken", ReasonConflict, name=reason.name)
        theirs = {normalize(other.name), other.code.lower(), *(normalize(s) for s in other.synonyms)}
        for key, phrase in mine.items():
            if key in theirs:
                raise _refuse(core, "phrase_taken", ReasonConflict, phrase=phrase, other=other.name)


def _snapshot(reason: ExitReason) -> dict[str, Any]:
    return {
        "code": reason.code,
        "name": reason.name,
        "synonyms": list(reason.synonyms),
        "outcome": reason.outcome,
        "active": reason.active,
        "sort_order": reason.sort_order,
    }


async def _commit(core: Core, session: AsyncSession, name: str) -> None:
    try:
        await session.commit()
    except IntegrityError as exc:  # a name or code written by another admin at the same moment
        await session.rollback()
        raise _refuse(core, "reason_name_taken", ReasonConflict, name=name) from exc


async def add(
    core: Core,
    *,
    name: str,
    outcome: str,
    synonyms: Sequence[str] = (),
    code: str | None = None,
    actor: str,
    source: str,
) -> ExitReason:
    """Add an enabled reason after the others. ``code`` (lower-case letters, digits, _) is made up
    when not given. Refused when its name or a synonym is another reason's phrase. Audited."""
    name = _clean_name(core, name)
    cleaned = _clean_synonyms(core, synonyms)
    _check_outcome(core, outcome)
    if code is not None and not _CODE.fullmatch(code):
        raise _refuse(core, "reason_code", code=code)
    async with core.sessions() as session:
        rows = await repo.list_reasons(session, active_only=False)
        if code is not None and any(r.code == code for r in rows):
            raise _refuse(core, "reason_code_taken", ReasonConflict, code=code)
        reason = ExitReason(
            code=code or f"custom_{secrets.token_hex(4)}",
            name=name,
            synonyms=cleaned,
            outcome=outcome,
            sort_order=max((r.sort_order for r in rows), default=-1) + 1,
            active=True,
        )
        _check_clashes(core, reason, rows)
        session.add(reason)
        repo.audit(
            session,
            at=core.clock.now(),
            actor=actor,
            action="reason.added",
            detail={"source": source, "after": _snapshot(reason)},
        )
        await _commit(core, session, name)
        await session.refresh(reason)
        return reason


async def edit(
    core: Core,
    *,
    code: str,
    actor: str,
    source: str,
    name: str | None = None,
    synonyms: Sequence[str] | None = None,
    outcome: str | None = None,
    active: bool | None = None,
) -> ExitReason:
    """Rename, replace the synonyms, change the outcome, enable or disable (None: unchanged).

    Exit records keep the name they were written with; a renamed reason is matched by its new
    name from the next message on. Audited with the values before and after."""
    async with core.sessions() as session:
        rows = await repo.list_reasons(session, active_only=False)
        reason = next((r for r in rows if r.code == code), None)
        if reason is None:
            raise _refuse(core, "reason_not_found", ReasonNotFound, code=code)
        before = _snapshot(reason)
        if name is not None:
            reason.name = _clean_name(core, name)
        if synonyms is not None:
            reason.synonyms = _clean_synonyms(core, synonyms)
        if outcome is not None:
            reason.outcome = _check_outcome(core, outcome)
        if active is not None:
            if not active and code in SYSTEM_CODES:
                raise _refuse(core, "reason_system", ReasonConflict, name=reason.name)
            if not active and not any(r.active for r in rows if r.code != code):
                raise _refuse(core, "reason_last_active")
            reason.active = active
        after = _snapshot(reason)
        if after == before:
            return reason
        _check_clashes(core, reason, rows)
        session.add(reason)
        action = "reason.updated"
        if {k for k in after if after[k] != before[k]} == {"active"}:
            action = "reason.enabled" if reason.active else "reason.disabled"
        repo.audit(
            session,
            at=core.clock.now(),
            actor=actor,
            action=action,
            detail={"source": source, "before": before, "after": after},
        )
        await _commit(core, session, reason.name)
        await session.refresh(reason)
        return reason


async def reorder(core: Core, *, codes: Sequence[str], actor: str, source: str) -> list[ExitReason]:
    """Put every reason in the order of ``codes`` (each code exactly once). Audited."""
    async with core.sessions() as session:
        rows = await repo.list_reasons(session, active_only=False)
        by_code = {r.code: r for r in rows}
        if sorted(codes) != sorted(by_code):
            raise _refuse(core, "reason_order")
        before = [r.code for r in rows]
        for order, code in enumerate(codes):
            by_code[code].sort_order = order
            session.add(by_code[code])
        if list(codes) != before:
            repo.audit(
                session,
                at=core.clock.now(),
                actor=actor,
                action="reason.reordered",
                detail={"source": source, "before": before, "after": list(codes)},
            )
        await session.commit()
        return [by_code[c] for c in codes]


async def move(core: Core, *, code: str, offset: int, actor: str, source: str) -> list[ExitReason]:
    """Move one reason ``offset`` places (-1: up one, 1: down one), clamped to the list's ends."""
    async with core.sessions() as session:
        codes = [r.code for r in await repo.list_reasons(session, active_only=False)]
    if code not in codes:
        raise _refuse(core, "reason_not_found", ReasonNotFound, code=code)
    at = max(0, min(len(codes) - 1, codes.index(code) + offset))
    codes.remove(code)
    codes.insert(at, code)
    return await reorder(core, codes=codes, actor=actor, source=source)


async def delete(core: Core, *, code: str, actor: str, source: str) -> ExitReason:
    """Delete a disabled reason nothing refers to. Refused for a default one (code refers to it and
    start-up would seed it again), for one that exit records or termination jobs refer to (disable
    it instead), and for an enabled one (disable it first, so no termination can pick it while it
    goes)."""
    async with core.sessions() as session:
        reason = await repo.get_reason(session, code=code)
        if reason is None:
            raise _refuse(core, "reason_not_found", ReasonNotFound, code=code)
        if code in BUILTIN_CODES:
            raise _refuse(core, "reason_builtin", ReasonConflict, name=reason.name)
        if reason.active:
            raise _refuse(core, "reason_enabled", ReasonConflict, name=reason.name)
        exits, jobs = await repo.reason_references(session, code=code)
        if exits:
            raise _refuse(core, "reason_in_use", ReasonConflict, name=reason.name, count=exits)
        if jobs:
            raise _refuse(core, "reason_in_job", ReasonConflict, name=reason.name)
        before = _snapshot(reason)
        await session.delete(reason)
        repo.audit(
            session,
            at=core.clock.now(),
            actor=actor,
            action="reason.deleted",
            detail={"source": source, "before": before},
        )
        await session.commit()
        return reason
