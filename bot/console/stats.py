"""统计: exits in a date range (今天/本周/本月/自定义) by reason with the 7-day chart, by HR owner
and by position, and the CSV of those exits. Managers and admins only, as chat's 统计 command."""

from __future__ import annotations

import logging
from datetime import date

from aiohttp import web

from bot.console.web import PREFIX, SECURITY_HEADERS, core_of, manager_page, render
from bot.services import stats
from bot.services.console_auth import ConsoleUser

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

STATS = f"{PREFIX}/stats"


def _range(request: web.Request) -> tuple[str, date, date]:
    """The period asked for and its days; ``StatsError`` (400) for a bad one."""
    q = request.query
    period = q.get("period", stats.Period.today.value)
    days: list[date | None] = []
    for name in ("from", "to"):
        value = q.get(name, "")
        try:
            days.append(date.fromisoformat(value) if value else None)
        except ValueError:
            raise stats.StatsError(f"日期格式不正确:{value[:20]}(应为 YYYY-MM-DD)") from None
    first, last = stats.period_range(core_of(request), period, start=days[0], end=days[1])
    return period, first, last


@routes.get(STATS)
@manager_page
async def stats_page(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    try:
        period, first, last = _range(request)
    except stats.StatsError as exc:
        period = request.query.get("period", "")[:20]
        return render(request, "stats", status=exc.http_status, user=user, error=exc.message, s=None, period=period)
    found = await stats.exit_stats(core_of(request), start=first, end=last, hr_key=user.scope)
    query = f"period={period}&from={first.isoformat()}&to={last.isoformat()}"
    peak = max([c.count for c in found.by_reason] + [1])
    return render(request, "stats", user=user, s=found, period=period, query=query, peak=peak, error="")


@routes.get(f"{STATS}/chart.png")
@manager_page
async def stats_chart(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    try:
        _, first, last = _range(request)
    except stats.StatsError as exc:
        raise web.HTTPBadRequest(text=exc.message) from None
    core = core_of(request)
    found = await stats.exit_stats(core, start=first, end=last, hr_key=user.scope)
    try:
        png = await stats.chart_png(core, found)
    except Exception:  # a chart that cannot be drawn is a 503 with our headers, not a bare 500
        log.exception("the 统计 chart for %s..%s could not be drawn", first, last)
        text = core.templates.render("console/chart_failed.txt.j2")
        return web.Response(text=text, status=503, charset="utf-8", headers=SECURITY_HEADERS)
    return web.Response(body=png, content_type="image/png", headers=SECURITY_HEADERS)


@routes.get(f"{STATS}/exits.csv")
@manager_page
async def stats_csv(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    try:
        _, first, last = _range(request)
    except stats.StatsError as exc:
        raise web.HTTPBadRequest(text=exc.message) from None
    body = await stats.exits_csv(core_of(request), start=first, end=last, hr_key=user.scope)
    name = f"exits-{first.isoformat()}-{last.isoformat()}.csv"
    headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'}
    return web.Response(body=body, content_type="text/csv", charset="utf-8", headers=headers)
