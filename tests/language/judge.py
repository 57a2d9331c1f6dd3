"""The language judge: send each corpus entry through the real chat path, observe what changed.

An entry is judged by the database, not by reply wording wherever possible: open prompts
(``PendingAction`` rows of the asker in the entry's own chat), interview status and start time,
exit records, to-dos. Outcomes:

* ``understood`` - the expected action is waiting for 确认 (or was done, for 确认 / 取消 answers),
  or a read-only question was answered with the expected data;
* ``asked`` - a useful question that leads to the right action (a numbered pick that lists the
  candidate, the reason list for the right interview when a reason was named, the hour for the
  right day);
* ``missed`` - nothing useful (没有看懂, not found, a prompt for the right candidate with the wrong
  reason or time, ...);
* ``wrong`` - acted wrongly: an interview changed or an exit record was written that the entry
  did not expect; a confirmation prompt (terminate / reschedule / terminate_reschedule) for
  another candidate or another action; for ``none`` entries any confirmation prompt opened or
  confirmed; for ``refuse_multi`` the second candidate's name inside a prompt's params.

``refuse_multi`` (two candidates in one message): ``wrong`` when a new prompt's params (the
reason, the 说明 detail, ...) carry the second candidate's name while the prompt is not for that
candidate (the bug: 「终止面试 李明 候选人放弃 王芳 系统故障」 becoming 李明's 说明 "王芳 系统故障"), or a
confirmation prompt opens for someone not named; ``understood`` when neither happened and the
reply names the second candidate on its own (a prompt for the first with "王芳 请另发一条", or a
clear refusal naming both); ``missed`` otherwise. Replies count without the 「…」 quotes that only
echo the message (没有看懂「…」), for ``reply`` entries too.

Isolation: every entry gets its own chat id (prompts are per requester and chat), and the world
is rebuilt (a fresh app on a copy of the template database) whenever an entry changed shared
state (interviews, exit records, to-dos, shares, people, the open 求助), so each entry starts
from the same world. See tests/language/README.md.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from bot.app import create_app
from bot.clock import FrozenClock
from bot.dispatcher import APOLOGY
from bot.keys import CORE
from bot.language.normalize import normalize as clean_text
from storage.db import migrate_async
from storage.models import ExitRecord, Interview, InterviewShare, PendingAction, Person, Todo
from tests.chat import ChatUser
from tests.conftest import CLOCK_START, make_settings
from tests.language.world import TZ, build_world

CORPUS = Path(__file__).with_name("corpus.json")
OUTCOMES = ("understood", "asked", "missed", "wrong")
# Prompts that 确认 turns into an action.
CONFIRM_KINDS = ("terminate", "reschedule", "terminate_reschedule")
# Prompts that are not tied to one chat (looked up with chat_id=None).
SHARED_PROMPTS = ("help_request", "candidate_exit")


@dataclass(frozen=True)
class Entry:
    index: int
    text: str
    category: str
    group: str
    asker: str
    chat: str
    before: tuple[str, ...]
    expect: dict[str, Any]

    @classmethod
    def load(cls, index: int, raw: dict[str, Any]) -> Entry:
        return cls(
            index=index,
            text=raw["text"],
            category=raw["category"],
            group=raw["group"],
            asker=raw.get("as", "hr01"),
            chat=raw.get("chat", "direct"),
            before=tuple(raw.get("before", ())),
            expect=raw["expect"],
        )


def load_corpus(path: Path = CORPUS) -> list[Entry]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return [Entry.load(i, item) for i, item in enumerate(raw)]


@dataclass
class Result:
    entry: Entry
    outcome: str
    note: str = ""
    replies: list[str] = field(default_factory=list)
    apology: bool = False


# --- times written relative to the clock -----------------------------------------------------

_REL_DAY = re.compile(r"^\+(\d+)d(?: (\d{1,2}):(\d{2}))?$")
_REL_SPAN = re.compile(r"^\+(\d+)([hm])$")
_MONTH_DAY = re.compile(r"^(\d{1,2})-(\d{1,2}) (\d{1,2}):(\d{2})$")


def resolve_at(spec: str, now: datetime) -> datetime:
    """'+1d 15:00' (tomorrow 15:00), '+2h', '+30m', '12-20 14:00' (this year), or ISO with offset."""
    local = now.astimezone(TZ)
    if m := _REL_DAY.match(spec):
        if m.group(2) is None:
            raise ValueError(f"{spec!r} names a day, not a time: use 'day'")
        day = local.date() + timedelta(days=int(m.group(1)))
        return datetime(day.year, day.month, day.day, int(m.group(2)), int(m.group(3)), tzinfo=TZ)
    if m := _REL_SPAN.match(spec):
        amount = int(m.group(1))
        return now + (timedelta(hours=amount) if m.group(2) == "h" else timedelta(minutes=amount))
    if m := _MONTH_DAY.match(spec):
        return datetime(local.year, int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4)), tzinfo=TZ)
    return datetime.fromisoformat(spec)


def resolve_day(spec: str, now: datetime) -> date:
    if m := _REL_DAY.match(spec):
        return now.astimezone(TZ).date() + timedelta(days=int(m.group(1)))
    return date.fromisoformat(spec)


# --- observing the database -------------------------------------------------------------------


@dataclass
class Snapshot:
    interviews: dict[str, tuple[str, str | None]]  # platform_id -> (status, scheduled_at ISO)
    exits: int
    shared: tuple[Any, ...]  # to-dos, shares, people, shared prompts: anything later entries read
    prompts: dict[int, PendingAction]  # the asker's prompts in the entry's chat, by id

    def changed(self, after: Snapshot) -> dict[str, tuple[Any, Any]]:
        return {k: (v, after.interviews.get(k)) for k, v in self.interviews.items() if after.interviews.get(k) != v}


async def snapshot(app: web.Application, requester: str, chat_id: str) -> Snapshot:
    async with app[CORE].sessions() as session:
        rows = (await session.exec(select(Interview))).all()
        interviews = {
            r.platform_id: (r.status, r.scheduled_at.astimezone(TZ).isoformat() if r.scheduled_at else None)
            for r in rows
        }
        exits = len((await session.exec(select(ExitRecord.id))).all())
        todos = tuple(sorted((t.id, t.done) for t in (await session.exec(select(Todo))).all()))
        shares = tuple(
            sorted((s.interview_id, s.person_key) for s in (await session.exec(select(InterviewShare))).all())
        )
        people = tuple(sorted((p.user_id, p.role) for p in (await session.exec(select(Person))).all()))
        shared_prompts = tuple(
            sorted(
                (p.id, p.state)
                for p in (
                    await session.exec(select(PendingAction).where(PendingAction.action.in_(SHARED_PROMPTS)))  # type: ignore[attr-defined]
                ).all()
            )
        )
        mine = (
            await session.exec(
                select(PendingAction).where(PendingAction.requester == requester, PendingAction.chat_id == chat_id)
            )
        ).all()
    return Snapshot(interviews, exits, (todos, shares, people, shared_prompts), {p.id: p for p in mine if p.id})


# --- judging one entry ------------------------------------------------------------------------


def _choices(p: PendingAction) -> list[str]:
    return list(p.params.get("choices") or [])


def _same_time(value: Any, expected: datetime) -> bool:
    try:
        return datetime.fromisoformat(str(value)) == expected
    except ValueError:
        return False


_QUOTED = re.compile(r"「([^」]*)」")


def unechoed(reply: str, message: str) -> str:
    """The reply without the quotes that only echo the message (没有看懂「…」, 没有找到「…」 and
    hints naming a word of it), so that a name counts only when the bot said it on its own."""
    said = clean_text(message)
    return _QUOTED.sub(lambda m: "" if clean_text(m.group(1)) in said else m.group(0), reply)


def judge(entry: Entry, before: Snapshot, after: Snapshot, replies: Sequence[str], now: datetime) -> tuple[str, str]:
    """(outcome, note) for one entry from what the database shows before and after its message."""
    expect = entry.expect
    kind = expect["action"]
    changed = before.changed(after)
    new_exits = after.exits - before.exits
    new_open = [p for pid, p in after.prompts.items() if pid not in before.prompts and p.state == "open"]
    confirmable = [p for p in new_open if p.action in CONFIRM_KINDS]
    setup = {pid: p for pid, p in before.prompts.items() if p.state == "open"}  # opened by ``before``
    setup_after = {pid: after.prompts[pid] for pid in setup}
    text = unechoed("\n".join(replies), entry.text)

    if kind == "confirm":
        target = expect["candidate"]
        effect = expect.get("effect", "terminated")
        others = {k: v for k, v in changed.items() if k != target}
        if others:
            return "wrong", f"changed {others}"
        if target in changed:
            status, _ = after.interviews[target]
            ok = status == "terminated" if effect == "terminated" else status == "scheduled"
            return ("understood", "") if ok else ("wrong", f"{target} became {changed[target][1]}")
        if new_exits:
            return "wrong", f"{new_exits} exit record(s) written"
        if any(p.state == "cancelled" for p in setup_after.values()):
            return "missed", "cancelled instead of confirmed"
        return "missed", "nothing confirmed"

    # Every other kind: no interview may change, no exit record may be written.
    if changed:
        return "wrong", f"changed {changed}"
    if new_exits:
        return "wrong", f"{new_exits} exit record(s) written"

    if kind == "cancel":
        if any(p.state == "confirmed" for p in setup_after.values()):
            return "wrong", "confirmed instead of cancelled"
        if confirmable:
            return "wrong", f"opened {confirmable[0].action} {confirmable[0].params}"
        if setup and all(p.state != "open" for p in setup_after.values()):
            return "understood", ""
        return "missed", "the prompt is still open"

    if kind == "none":
        if confirmable:
            return "wrong", f"opened {confirmable[0].action} {confirmable[0].params}"
        confirmed = [p for p in setup_after.values() if p.state == "confirmed"]
        if confirmed:
            return "wrong", f"confirmed {confirmed[0].action}"
        return "understood", ""

    if kind == "reply":
        if confirmable:
            return "wrong", f"opened {confirmable[0].action} {confirmable[0].params}"
        if new_open:
            return "missed", f"opened {new_open[0].action} instead of answering"
        lacking = [s for s in expect["contains"] if s not in text]
        return ("missed", f"reply lacks {lacking}") if lacking else ("understood", "")

    if kind == "refuse_multi":
        first, second, second_name = expect["candidate"], expect["second"], expect["second_name"]
        for p in new_open:
            carried = json.dumps({k: v for k, v in p.params.items() if k != "choices"}, ensure_ascii=False)
            if second_name in carried and p.params.get("platform_id") != second:
                return "wrong", f"{second_name} carried inside {p.action} {p.params}"
        strays = [p for p in confirmable if p.params.get("platform_id") not in (first, second)]
        if strays:
            return "wrong", f"opened {strays[0].action} {strays[0].params}"
        if second_name not in text:
            return "missed", f"{second_name} not acknowledged"
        return "understood", ""

    candidate = expect["candidate"]
    for p in confirmable:
        if p.params.get("platform_id") != candidate:
            return "wrong", f"opened {p.action} for {p.params.get('platform_id')}"
        if p.action != kind:
            return "wrong", f"opened {p.action} instead of {kind}"

    if kind == "terminate":
        reason = expect.get("reason")
        for p in confirmable:
            if reason is None or p.params.get("reason") == reason:
                return "understood", ""
            return "missed", f"reason {p.params.get('reason')} instead of {reason}"
        for p in new_open:
            if p.action == "terminate.pick_reason" and p.params.get("platform_id") == candidate:
                return ("understood", "") if reason is None else ("asked", "reason list")
            if p.action == "terminate.pick_interview" and candidate in _choices(p):
                return "asked", "interview pick"
        return "missed", ""

    if kind == "reschedule":
        at = resolve_at(expect["at"], now) if expect.get("at") else None
        day = resolve_day(expect["day"], now) if expect.get("day") else None
        for p in confirmable:
            if at is None or _same_time(p.params.get("at"), at):
                return ("understood", "") if at is not None else ("asked", "time guessed")
            return "missed", f"time {p.params.get('at')} instead of {at.isoformat()}"
        for p in new_open:
            if p.action == "reschedule.ask_hour" and p.params.get("platform_id") == candidate:
                if day is None or p.params.get("day") == day.isoformat() or at is None:
                    return "asked", "hour asked"
                return "missed", f"asked the hour of {p.params.get('day')}"
            if p.action == "reschedule.pick_interview" and candidate in _choices(p):
                return "asked", "interview pick"
            if p.action.startswith("reschedule"):
                return "asked", p.action
        return "missed", ""

    if kind == "terminate_reschedule":
        at = resolve_at(expect["at"], now) if expect.get("at") else None
        for p in confirmable:  # all terminate_reschedule for this candidate (checked above)
            if expect.get("reason") and p.params.get("reason") != expect["reason"]:
                return "missed", f"reason {p.params.get('reason')} instead of {expect['reason']}"
            if at is not None and not _same_time(p.params.get("at"), at):
                return "missed", f"time {p.params.get('at')} instead of {at.isoformat()}"
            return "understood", ""
        for p in new_open:
            if p.action.startswith("terminate_reschedule") and (
                p.params.get("platform_id") == candidate or candidate in _choices(p)
            ):
                return "asked", p.action
        return "missed", ""

    raise ValueError(f"entry {entry.index}: unknown expectation {kind!r}")


# --- running ----------------------------------------------------------------------------------


class Bench:
    """Runs entries against a world; the world is a copy of a template database built once."""

    def __init__(self, workdir: Path | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="language-") if workdir is None else None
        self.dir = Path(self._tmp.name) if self._tmp else workdir  # type: ignore[assignment]
        self.template = self.dir / "world.db"
        self.work = self.dir / "work.db"
        self.client: TestClient | None = None
        self.clock = FrozenClock(CLOCK_START)
        self.dirty = True
        self.baseline: tuple[Any, ...] | None = None
        self.worlds = 0

    @property
    def app(self) -> web.Application:
        assert self.client is not None and self.client.server.app is not None
        return self.client.server.app

    async def _start(self, path: Path) -> TestClient:
        self.clock = FrozenClock(CLOCK_START)
        app = create_app(make_settings(f"sqlite+aiosqlite:///{path}"), clock=self.clock)
        client = TestClient(TestServer(app))
        await client.start_server()
        return client

    async def prepare(self) -> None:
        """Build the world once into the template database."""
        await migrate_async(f"sqlite+aiosqlite:///{self.template}")
        client = await self._start(self.template)
        try:
            await build_world(client, self.clock)
        finally:
            await client.close()

    async def fresh_world(self) -> None:
        if self.client is not None:
            await self.client.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.work}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.template, self.work)
        self.client = await self._start(self.work)
        self.worlds += 1
        snap = await snapshot(self.app, "", "")
        self.baseline = (snap.interviews, snap.exits, snap.shared)
        self.dirty = False

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None
        if self._tmp is not None:
            self._tmp.cleanup()

    async def run_entry(self, entry: Entry) -> Result:
        if self.dirty or self.client is None:
            await self.fresh_world()
        chat_id = f"{entry.chat}-{entry.index}"
        user = ChatUser(
            self.app, entry.asker, chat_id=chat_id, chat_type="group" if entry.chat == "group" else "direct"
        )
        for text in entry.before:
            await user.say(text)
        requester = f"wecom:{entry.asker}"
        before = await snapshot(self.app, requester, chat_id)
        replies = [r.text for r in await user.say(entry.text)]
        after = await snapshot(self.app, requester, chat_id)
        outcome, note = judge(entry, before, after, replies, self.clock.now())
        self.dirty = (after.interviews, after.exits, after.shared) != self.baseline
        return Result(entry, outcome, note, replies, apology=any(APOLOGY in r for r in replies))

    async def run(self, entries: Sequence[Entry]) -> list[Result]:
        if not self.template.exists():
            await self.prepare()
        return [await self.run_entry(e) for e in entries]


# --- reporting --------------------------------------------------------------------------------


def rates(results: Sequence[Result], key: str) -> dict[str, Counter[str]]:
    table: dict[str, Counter[str]] = {}
    for r in results:
        table.setdefault(getattr(r.entry, key), Counter())[r.outcome] += 1
    return table


def ok_rate(results: Sequence[Result], category: str) -> float:
    picked = [r for r in results if r.entry.category == category]
    if not picked:
        return 1.0
    return sum(r.outcome in ("understood", "asked") for r in picked) / len(picked)


def format_table(results: Sequence[Result]) -> str:
    lines = []
    for key in ("category", "group"):
        table = rates(results, key)
        lines.append(f"| {key} | n | understood | asked | missed | wrong | ok |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|")
        for name, counts in sorted(table.items(), key=lambda kv: -sum(kv[1].values())):
            n = sum(counts.values())
            cells = " | ".join(f"{100 * counts[o] / n:.0f}%" for o in OUTCOMES)
            ok = 100 * (counts["understood"] + counts["asked"]) / n
            lines.append(f"| {name} | {n} | {cells} | {ok:.0f}% |")
        total = Counter(r.outcome for r in results)
        if key == "category":
            n = len(results)
            cells = " | ".join(f"{100 * total[o] / n:.0f}%" for o in OUTCOMES)
            ok = 100 * (total["understood"] + total["asked"]) / n
            lines.append(f"| **all** | {n} | {cells} | {ok:.0f}% |")
        lines.append("")
    return "\n".join(lines)


def format_misses(results: Sequence[Result], limit: int | None = None) -> str:
    lines = []
    for r in results:
        if r.outcome in ("understood", "asked"):
            continue
        reply = (r.replies[0] if r.replies else "(no reply)").replace("\n", " ")[:60]
        lines.append(
            f"#{r.entry.index} [{r.outcome}] {r.entry.group}/{r.entry.category} {r.entry.text!r} {r.note} → {reply}"
        )
    return "\n".join(lines[:limit] if limit else lines)


async def run_corpus(entries: Sequence[Entry] | None = None) -> tuple[list[Result], float, int]:
    """(results, seconds, worlds built) for the corpus (or ``entries``)."""
    bench = Bench()
    started = time.perf_counter()
    try:
        results = await bench.run(entries if entries is not None else load_corpus())
    finally:
        await bench.close()
    return results, time.perf_counter() - started, bench.worlds
