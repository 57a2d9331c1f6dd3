"""The managers' daily exit summary, sent once per (day, recipient) however many replicas run.

Numbers come from ``reports.daily_exit_reports`` (the same counting as ``python -m bot report exits``):
the day's exits by reason against the average of the 7 days before, open follow-up to-dos by HR
owner and interviews still in progress long after they started. Candidate contact details never
appear: only names, positions and interview ids.

The spike rule (「异常偏高」): a reason is flagged when the day's count is at least 2 and at least
BOT_SUMMARY_SPIKE_FACTOR times its daily average over the 7 days before, and only when at least
``MIN_HISTORY_DAYS`` (3) of those 7 days had an early exit of any reason. With less history (the
first days of a deployment) no reason is flagged and no average is shown: the summary says how many
days of history there are. Counts are whole numbers; averages and differences are shown with one
decimal only when they are not whole (``1``, ``0.3``, ``+2``).

With BOT_PUBLIC_BASE_URL the summary ends with a link to the console's 统计 page for those 7 days
and the day (a manager signs in with 后台 first).

Recipients: every person with role manager, in a 1:1 chat on their platform when that channel is
connected, else by email when they have one; plus the group robots that are configured. A chart of
exits by reason over 7 days goes where the channel takes images: a group robot that ``takes_images``
(WeCom: an image message, base64 + md5); and with BOT_PUBLIC_BASE_URL a link to ``/charts/<token>.png``
on this service, shown as an image in DingTalk markdown and as a link elsewhere (WeCom app messages
would need a media upload). A chart that cannot be drawn (a broken BOT_CHART_FONT, …) never stops the
summary: it goes without the chart and the log says why. The group robots come from
``Core.group_posters`` (the channel registry); their markdown (``daily_summary.md.j2``) has every value
escaped for markdown by ``bot.templating``.

Each recipient is claimed by inserting its (day, recipient) row (unique); a claim left by a crashed
replica expires and is taken over, and the notices carry a per-(day, recipient) dedupe key, so a
summary is queued exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from bot.chat.masking import KnownContacts, mask_contacts
from bot.delivery import GroupPost, GroupPoster
from bot.services import notices
from bot.services.charts import render_exit_chart
from bot.services.claims import CLAIM_FOR, local_text
from bot.services.console_auth import STATS_PATH
from bot.services.context import Core
from bot.services.reports import daily_exit_reports
from storage import repo
from storage.models import Notice, Person, Role, SummaryState

log = logging.getLogger(__name__)

WEEK = 7
MIN_SPIKE = 2
MIN_HISTORY_DAYS = 3  # days with any early exit among the 7 before, before a spike is flagged
STUCK_LISTED = 10
KIND = "daily_summary"


def number_text(value: float, *, sign: bool = False) -> str:
    """``1``, ``0.3``, ``+2``, ``-0.7``: one decimal only when the rounded value is not whole."""
    rounded = round(value, 1)
    text = f"{rounded:+.1f}" if sign else f"{rounded:.1f}"
    return text.removesuffix(".0")


@dataclass
class ReasonLine:
    name: str
    count: int
    average: float
    spike: bool

    @property
    def delta(self) -> float:
        return self.count - self.average

    @property
    def average_text(self) -> str:
        return number_text(self.average)

    @property
    def delta_text(self) -> str:
        return number_text(self.delta, sign=True)


@dataclass
class SummaryData:
    day: date
    total: int
    week_average: float
    reasons: list[ReasonLine]
    followups: list[dict[str, Any]]
    followups_total: int
    stuck: list[dict[str, Any]]
    stuck_total: int
    stuck_hours: int
    chart_days: list[date]
    chart_series: dict[str, list[int]]
    codes: dict[str, str]
    history_days: int = WEEK  # days of the 7 before with any early exit

    @property
    def judged(self) -> bool:
        """Enough history to compare with: averages shown, spikes flagged."""
        return self.history_days >= MIN_HISTORY_DAYS

    def context(self, chart_url: str = "", stats_url: str = "") -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "total": self.total,
            "week_average": number_text(self.week_average),
            "judged": self.judged,
            "history_days": self.history_days,
            "min_history_days": MIN_HISTORY_DAYS,
            "reasons": self.reasons,
            "followups": self.followups,
            "followups_total": self.followups_total,
            "stuck": self.stuck,
            "stuck_total": self.stuck_total,
            "stuck_hours": self.stuck_hours,
            "chart_url": chart_url,
            "stats_url": stats_url,
        }


@dataclass
class SummaryOutcome:
    day: date
    sent: list[str] = field(default_factory=list)  # recipients queued by this call
    already: list[str] = field(default_factory=list)  # sent before, or being sent by another replica
    unreachable: list[str] = field(default_factory=list)  # managers with no connected chat and no email


def summary_due_day(core: Core, now: datetime) -> date | None:
    """Today (in BOT_TIMEZONE) once its summary time has passed, else None."""
    local = now.astimezone(core.settings.tz)
    hour, minute = core.settings.daily_summary_time
    return local.date() if local.time() >= time(hour, minute) else None


async def build_summary(core: Core, *, day: date) -> SummaryData:
    s = core.settings
    reports = await daily_exit_reports(core, start=day - timedelta(days=WEEK), end=day)
    today, week = reports[-1], reports[:-1]
    history_days = sum(1 for r in week if r.total)
    reasons = []
    for name, count in today.by_reason.items():
        average = sum(r.by_reason.get(name, 0) for r in week) / WEEK
        if count or average:
            spike = (
                history_days >= MIN_HISTORY_DAYS and count >= MIN_SPIKE and count >= s.summary_spike_factor * average
            )
            reasons.append(ReasonLine(name=name, count=count, average=average, spike=spike))
    now = core.clock.now()
    async with core.sessions() as session:
        people = {p.key: p.name for p in await repo.list_people(session)}
        codes = {r.name: r.code for r in await repo.list_reasons(session, active_only=False)}
        todo_counts = await repo.open_todo_counts(session)
        stuck_total, stuck = await repo.stuck_interviews(
            session, started_before=now - timedelta(seconds=s.summary_stuck_after_seconds), limit=STUCK_LISTED
        )
    chart_reports = reports[1:]
    return SummaryData(
        day=day,
        total=today.total,
        week_average=sum(r.total for r in week) / WEEK,
        reasons=reasons,
        followups=[{"owner": people.get(key, key), "count": n} for key, n in todo_counts],
        followups_total=sum(n for _, n in todo_counts),
        stuck=[
            {
                "platform_id": i.platform_id,
                "candidate_name": c.name,
                "position": i.position,
                "started_text": local_text(i.started_at, s.tz),
                "owner": people.get(i.hr_key or "", i.hr_key or "未指定"),
            }
            for i, c in stuck
        ],
        stuck_total=stuck_total,
        stuck_hours=max(1, s.summary_stuck_after_seconds // 3600),
        chart_days=[r.start for r in chart_reports],
        chart_series={name: [r.by_reason.get(name, 0) for r in chart_reports] for name in today.by_reason},
        codes=codes,
        history_days=history_days,
    )


def stats_url(core: Core, day: date) -> str:
    """The console's 统计 page for the summary's 7 days; "" without BOT_PUBLIC_BASE_URL (a link to
    this machine's own address would not open on a manager's phone)."""
    base = core.settings.public_base_url
    if not base:
        return ""
    first = day - timedelta(days=WEEK - 1)
    return f"{base}{STATS_PATH}?period=custom&from={first.isoformat()}&to={day.isoformat()}"


async def render_chart(core: Core, data: SummaryData) -> bytes | None:
    """The chart's PNG, or None when it cannot be drawn: the summary then goes without it."""
    try:
        return await asyncio.to_thread(
            render_exit_chart, data.chart_days, data.chart_series, codes=data.codes, font_path=core.settings.chart_font
        )
    except Exception:  # a chart (font, backend, a name) never stops the summary
        log.exception("daily summary for %s: the chart could not be drawn; sending the summary without it", data.day)
        return None


@dataclass
class _Target:
    key: str  # the (day, recipient) claim key
    channel: str  # a staff chat channel, email, or a group robot's channel
    person: Person | None = None
    poster: GroupPoster | None = None  # for a group robot


async def _targets(core: Core) -> tuple[list[_Target], list[str]]:
    async with core.sessions() as session:
        managers = await repo.list_people(session, role=Role.manager.value)
    targets, unreachable = [], []
    for m in managers:
        if m.platform in core.staff_channels:
            targets.append(_Target(key=m.key, channel=m.platform, person=m))
        elif m.email:
            targets.append(_Target(key=m.key, channel="email", person=m))
        else:
            unreachable.append(m.key)
    for poster in core.group_posters:
        targets.append(_Target(key=f"robot:{poster.channel}", channel=poster.channel, poster=poster))
    return targets, unreachable


async def send_daily_summary(core: Core, *, day: date) -> SummaryOutcome:
    """Queue the summary of ``day`` to every recipient that has not had it yet."""
    outcome = SummaryOutcome(day=day)
    targets, outcome.unreachable = await _targets(core)
    now = core.clock.now()
    worker = core.worker_id
    async with core.sessions() as session:
        rows = await repo.summaries_for_day(session, day=day)
    mine = []
    for target in targets:
        row = rows.get(target.key)
        if row is not None and (row.state != SummaryState.claimed or row.claimed_until >= now):
            outcome.already.append(target.key)
            continue
        async with core.sessions() as session:
            won = await repo.claim_summary_and_commit(
                session, day=day, recipient=target.key, worker=worker, now=now, until=now + CLAIM_FOR
            )
        if won:
            mine.append(target)
        else:
            outcome.already.append(target.key)
    if not mine:
        return outcome
    for key in outcome.unreachable:
        log.warning("daily summary: manager %s has no connected chat and no email", key)
    with core.contacts.collecting() as known:  # contacts of any candidate the summary was built from
        data = await build_summary(core, day=day)
    needs_chart = bool(core.settings.public_base_url) or any(t.poster and t.poster.takes_images for t in mine)
    chart = await render_chart(core, data) if needs_chart else None
    for target in mine:
        if await _queue(core, target, data, chart, worker, known):
            outcome.sent.append(target.key)
    if outcome.sent:
        core.wake_outbox()
        log.info("daily summary for %s queued to %s", day, ", ".join(outcome.sent))
    return outcome


async def _queue(
    core: Core, target: _Target, data: SummaryData, chart: bytes | None, worker: str, known: KnownContacts
) -> bool:
    now = core.clock.now()
    s, t = core.settings, core.templates
    key = f"summary:{data.day.isoformat()}:{target.key}"
    async with core.sessions() as session:
        row = (await repo.summaries_for_day(session, day=data.day)).get(target.key)
        if row is None or row.state != SummaryState.claimed or row.claimed_by != worker:
            return False  # our claim expired and another replica took it over
        chart_url = ""
        if chart is not None and s.public_base_url:
            row.chart_token, row.chart_png = secrets.token_urlsafe(24), chart
            chart_url = f"{s.public_base_url}/charts/{row.chart_token}.png"
        ctx = data.context(chart_url, stats_url(core, data.day))
        title = t.render("notices/daily_summary.subject.j2", company=s.company_name, **ctx)
        text = t.render("notices/daily_summary.txt.j2", **ctx)
        if target.poster is not None:  # a group robot: contacts masked
            # A robot that takes images gets the chart as one, and no link to it in the text.
            image = chart if target.poster.takes_images else None
            md_ctx = {**ctx, "chart_url": ""} if target.poster.takes_images else ctx
            markdown = mask_contacts(t.render("notices/daily_summary.md.j2", **md_ctx), known)
            post = GroupPost(kind=KIND, now=now, title=title, markdown=markdown, dedupe_key=key, image=image)
            for notice in target.poster.build(post):
                session.add(notice)
        elif target.channel == "email":
            assert target.person is not None and target.person.email
            email = target.person.email
            session.add(
                Notice(
                    kind=KIND,
                    channel="email",
                    recipient=email,
                    subject=title,
                    body=text,
                    payload={"audience": "staff"},
                    destination=f"email:{email}",
                    dedupe_key=key,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
        else:
            await notices.notify_staff(
                session, core, kind=KIND, person_key=target.key, interview=None, now=now, text=text, dedupe_key=key
            )
        row.state, row.sent_at = SummaryState.sent.value, now
        session.add(row)
        try:
            await session.commit()
        except IntegrityError:  # queued already by a replica whose claim had expired
            await session.rollback()
            return False
    return True
