"""Importing people from a CSV file (the 人员 page and ``python -m bot people import FILE.csv``).

Columns ``platform,user_id,name,role,mobile,email`` (header row required, any order, extra columns
ignored), UTF-8 with or without a BOM (what Excel's "CSV UTF-8" writes). ``preview`` says, row by
row, what would be added, changed or left unchanged, and why a row cannot be imported (row numbers
count the header as row 1, as a spreadsheet shows them). ``apply`` writes exactly what a preview
showed: it plans again and refuses (changing nothing) when the plan differs from the one previewed,
e.g. because someone edited a person in between. Rows with errors are skipped. An empty mobile or
email cell leaves the stored one as it is; an empty name keeps the stored name.

Rules are the ones of ``people.register`` (one registration rule): known platform, known role, a
name for a new person, mobile and email formats, nobody changes their own role.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy.exc import IntegrityError

from bot.services import people
from bot.services.context import Core
from bot.services.errors import ServiceError
from storage import repo
from storage.models import Person
from templates.labels import LABELS

COLUMNS = ("platform", "user_id", "name", "role", "mobile", "email")
REQUIRED = ("platform", "user_id", "role")
MAX_BYTES = 1_000_000
MAX_ROWS = 5000


class ImportRefused(ServiceError):
    code = "import_refused"
    http_status = 400


class RowAction(StrEnum):
    add = "add"
    change = "change"
    unchanged = "unchanged"
    error = "error"


@dataclass
class ImportRow:
    row: int  # spreadsheet row number (the header is row 1)
    platform: str
    user_id: str
    name: str
    role: str
    mobile: str
    email: str
    action: RowAction = RowAction.unchanged
    # field -> [stored, from the file] for a change.
    changes: dict[str, list[str | None]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.user_id}"


@dataclass
class ImportPreview:
    rows: list[ImportRow]
    fingerprint: str  # give it back to ``apply``: it refuses when the plan is no longer this one

    def of(self, action: RowAction) -> list[ImportRow]:
        return [r for r in self.rows if r.action == action]

    @property
    def counts(self) -> dict[str, int]:
        return {a.value: len(self.of(a)) for a in RowAction}


@dataclass(frozen=True)
class ImportResult:
    added: int
    changed: int
    unchanged: int
    skipped: int


def _refuse(core: Core, error: str, **context: object) -> ImportRefused:
    return ImportRefused(core.templates.render("admin/errors.txt.j2", error=error, **context), error=error)


def _role(word: str) -> str:
    """A role code from what a spreadsheet says (admin / 管理员 / 经理 / HR …); unknown words as typed."""
    words = LABELS["role_words"]
    return words.get(word) or words.get(word.lower()) or word


def _read(core: Core, data: bytes) -> list[tuple[int, dict[str, str] | None, int]]:
    """(row number, values by column or None when the row's width is wrong, its width)."""
    if len(data) > MAX_BYTES:
        raise _refuse(core, "csv_too_big", limit=MAX_BYTES)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _refuse(core, "csv_not_utf8") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)
        if header is None:
            raise _refuse(core, "csv_empty", columns=COLUMNS)
        names = [cell.strip().lower() for cell in header]
        missing = [c for c in REQUIRED if c not in names]
        if missing:
            raise _refuse(core, "csv_columns", missing=missing, columns=COLUMNS)
        out: list[tuple[int, dict[str, str] | None, int]] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(out) >= MAX_ROWS:
                raise _refuse(core, "csv_too_many_rows", limit=MAX_ROWS)
            number = reader.line_num
            if len(cells) != len(names):
                out.append((number, None, len(cells)))
                continue
            row = dict(zip(names, (cell.strip() for cell in cells), strict=True))
            out.append((number, {c: row.get(c, "") for c in COLUMNS}, len(cells)))
        return out
    except csv.Error as exc:
        raise _refuse(core, "csv_bad", row=reader.line_num) from exc


def _plan(
    core: Core, data: bytes, known: dict[str, Person], *, platforms: Sequence[str], actor: str
) -> list[ImportRow]:
    rows: list[ImportRow] = []
    first_seen: dict[str, int] = {}
    width = len(COLUMNS)
    for number, values, count in _read(core, data):
        if values is None:
            row = ImportRow(number, "", "", "", "", "", "", action=RowAction.error)
            row.errors.append(
                core.templates.render("admin/errors.txt.j2", error="row_columns", count=count, expected=width)
            )
            rows.append(row)
            continue
        row = ImportRow(
            number,
            platform=values["platform"],
            user_id=values["user_id"],
            name=values["name"],
            role=values["role"],
            mobile=values["mobile"],
            email=values["email"],
        )
        row.role = _role(row.role)
        row.errors = people.field_errors(
            core,
            platform=row.platform,
            user_id=row.user_id,
            role=row.role,
            name=row.name,
            mobile=row.mobile,
            email=row.email,
            platforms=platforms,
        )
        if row.key in first_seen:
            row.errors.append(
                core.templates.render("admin/errors.txt.j2", error="row_duplicate", row=first_seen[row.key])
            )
        else:
            first_seen[row.key] = number
        stored = known.get(row.key)
        if not row.errors:
            if stored is None and not row.name:
                row.errors.append(
                    core.templates.render("admin/errors.txt.j2", error="name_required", user_id=row.user_id)
                )
            elif stored is not None:
                row.changes = people.planned_changes(
                    stored, role=row.role, name=row.name, mobile=row.mobile or None, email=row.email or None
                )
                if "role" in row.changes and actor == row.key:
                    row.errors.append(core.templates.render("admin/errors.txt.j2", error="self_role"))
        if row.errors:
            row.action = RowAction.error
        elif stored is None:
            row.action = RowAction.add
        else:
            row.action = RowAction.change if row.changes else RowAction.unchanged
        rows.append(row)
    return rows


def _fingerprint(rows: Sequence[ImportRow]) -> str:
    plan = [
        [r.row, r.action.value, r.key, r.name, r.role, r.mobile, r.email, sorted(r.changes.items())]
        for r in rows
        if r.action in (RowAction.add, RowAction.change)
    ]
    return hashlib.sha256(json.dumps(plan, ensure_ascii=False, default=str).encode()).hexdigest()[:32]


async def _known(core: Core) -> dict[str, Person]:
    async with core.sessions() as session:
        return {p.key: p for p in await repo.list_people(session)}


async def preview(core: Core, data: bytes, *, platforms: Sequence[str], actor: str) -> ImportPreview:
    """What importing ``data`` would do; changes nothing. ``platforms``: the known platform names
    (the channel registry's, from the caller). ``ImportRefused`` for a file that cannot be read at all."""
    rows = _plan(core, data, await _known(core), platforms=platforms, actor=actor)
    return ImportPreview(rows=rows, fingerprint=_fingerprint(rows))


async def apply(
    core: Core, data: bytes, *, platforms: Sequence[str], fingerprint: str, actor: str, source: str
) -> ImportResult:
    """Write the rows the preview with ``fingerprint`` showed as added or changed, in one
    transaction with one audit event per person. Refused, changing nothing, when planning ``data``
    again gives another plan."""
    async with core.sessions() as session:
        known = {p.key: p for p in await repo.list_people(session)}
        rows = _plan(core, data, known, platforms=platforms, actor=actor)
        if _fingerprint(rows) != fingerprint:
            raise _refuse(core, "import_changed")
        for row in rows:
            if row.action not in (RowAction.add, RowAction.change):
                continue
            people.write_person(
                core,
                session,
                known.get(row.key),
                platform=row.platform,
                user_id=row.user_id,
                role=row.role,
                name=row.name or None,
                mobile=row.mobile or None,
                email=row.email or None,
                actor=actor,
                source=source,
            )
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            raise _refuse(core, "import_changed") from None
    counts = {a: sum(1 for r in rows if r.action == a) for a in RowAction}
    return ImportResult(
        added=counts[RowAction.add],
        changed=counts[RowAction.change],
        unchanged=counts[RowAction.unchanged],
        skipped=counts[RowAction.error],
    )
