"""Admin pages: 退出原因, 人员 (with CSV import preview), 通知 (重试 a dead one) and 系统 (with the
outbound events' endpoints).

Every change goes through the service that the CLI uses too (``bot/services/reasons.py``,
``people.py``, ``people_import.py``, ``console_admin.py``), with the admin as actor and source
``console``; a refusal shows the service's message on the same page, with its HTTP status.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web

from bot.channels import registry
from bot.console.web import PREFIX, Form, admin_action, admin_page, core_of, redirect, render, text_field
from bot.services import console_admin, outbound, people, people_import, reasons
from bot.services.console_auth import ConsoleUser
from bot.services.errors import ServiceError, refusal

routes = web.RouteTableDef()

SOURCE = "console"
REASONS = f"{PREFIX}/reasons"
PEOPLE = f"{PREFIX}/people"
NOTICES = f"{PREFIX}/notices"


# --- 退出原因 -------------------------------------------------------------------------------------


async def _reasons_page(request: web.Request, user: ConsoleUser, *, status: int = 200, error: str = "") -> web.Response:
    rows = await reasons.list_all(core_of(request))
    done = request.query.get("done", "")
    return render(
        request, "reasons", status=status, user=user, rows=rows, outcomes=reasons.OUTCOMES, error=error, done=done
    )


@routes.get(REASONS)
@admin_page
async def reasons_page(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    return await _reasons_page(request, user)


async def _reason_change(request: web.Request, user: ConsoleUser, form: Form) -> web.StreamResponse:
    core = core_of(request)
    op = text_field(form, "op", limit=20)
    code = text_field(form, "code", limit=64)
    who: dict[str, Any] = {"actor": user.key, "source": SOURCE}
    try:
        if op == "add":
            await reasons.add(
                core,
                name=text_field(form, "name", limit=100),
                outcome=text_field(form, "outcome", limit=32),
                synonyms=reasons.split_synonyms(text_field(form, "synonyms", limit=2000)),
                code=text_field(form, "new_code", limit=64) or None,
                **who,
            )
        elif op == "edit":
            await reasons.edit(
                core,
                code=code,
                name=text_field(form, "name", limit=100),
                outcome=text_field(form, "outcome", limit=32),
                synonyms=reasons.split_synonyms(text_field(form, "synonyms", limit=2000)),
                **who,
            )
        elif op in ("enable", "disable"):
            await reasons.edit(core, code=code, active=op == "enable", **who)
        elif op in ("up", "down"):
            await reasons.move(core, code=code, offset=-1 if op == "up" else 1, **who)
        elif op == "delete":
            await reasons.delete(core, code=code, **who)
        else:
            return await _reasons_page(request, user, status=400, error="未知的操作")
    except ServiceError as exc:
        return await _reasons_page(request, user, status=exc.http_status, error=exc.message)
    raise redirect(REASONS, done=op)


routes.post(REASONS)(admin_action(_reason_change))


# --- 人员 ------------------------------------------------------------------------------------------


async def _people_page(
    request: web.Request, user: ConsoleUser, *, status: int = 200, error: str = "", **extra: Any
) -> web.Response:
    return render(
        request,
        "people",
        status=status,
        user=user,
        rows=await people.list_all(core_of(request)),
        platforms=registry.names(),
        roles=[r.value for r in people.Role],
        error=error,
        done=request.query.get("done", ""),
        columns=people_import.COLUMNS,
        **extra,
    )


@routes.get(PEOPLE)
@admin_page
async def people_page(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    return await _people_page(request, user)


def _blank_is_none(value: str) -> str | None:
    return value or None


async def _person_change(request: web.Request, user: ConsoleUser, form: Form) -> web.StreamResponse:
    core = core_of(request)
    op = text_field(form, "op", limit=20)
    platform, user_id = text_field(form, "platform", limit=32), text_field(form, "user_id", limit=128)
    try:
        if op == "add":
            await people.register(
                core,
                platform=platform,
                user_id=user_id,
                role=text_field(form, "role", limit=16),
                name=_blank_is_none(text_field(form, "name", limit=64)),
                mobile=_blank_is_none(text_field(form, "mobile", limit=32)),
                email=_blank_is_none(text_field(form, "email", limit=254)),
                actor=user.key,
                source=SOURCE,
                platforms=registry.names(),
            )
        elif op == "edit":
            # Fields left as they were are sent back unchanged; an emptied mobile or email clears it.
            await people.update(
                core,
                platform=platform,
                user_id=user_id,
                role=text_field(form, "role", limit=16) or None,
                name=text_field(form, "name", limit=64) or None,
                mobile=text_field(form, "mobile", limit=32),
                email=text_field(form, "email", limit=254),
                actor=user.key,
                source=SOURCE,
            )
        elif op == "remove":
            if await people.revoke(core, platform=platform, user_id=user_id, actor=user.key, source=SOURCE) is None:
                return await _people_page(request, user, status=404, error=f"没有 {platform}:{user_id} 这个人")
        else:
            return await _people_page(request, user, status=400, error="未知的操作")
    except ServiceError as exc:
        return await _people_page(request, user, status=exc.http_status, error=exc.message)
    raise redirect(PEOPLE, done=op)


routes.post(PEOPLE)(admin_action(_person_change))


async def _csv_bytes(form: Form) -> bytes | None:
    """The uploaded file (preview) or the previewed content sent back (apply)."""
    upload = form.get("file")
    if isinstance(upload, web.FileField):
        return upload.file.read(people_import.MAX_BYTES + 1)
    kept = text_field(form, "data", limit=4 * people_import.MAX_BYTES)
    if kept:
        try:
            return base64.b64decode(kept.encode(), validate=True)
        except (binascii.Error, ValueError):
            return None
    return None


async def _import(request: web.Request, user: ConsoleUser, form: Form) -> web.StreamResponse:
    """预览 (no ``fingerprint``) shows what would change; 确认导入 writes exactly that."""
    core = core_of(request)
    data = await _csv_bytes(form)
    if not data:
        return await _people_page(request, user, status=400, error="请选择要导入的 CSV 文件")
    fingerprint = text_field(form, "fingerprint", limit=200)
    try:
        if not fingerprint:
            preview = await people_import.preview(core, data, platforms=registry.names(), actor=user.key)
            encoded = base64.b64encode(data).decode()
            return await _people_page(request, user, preview=preview, data=encoded)
        result = await people_import.apply(
            core, data, platforms=registry.names(), fingerprint=fingerprint, actor=user.key, source=SOURCE
        )
    except ServiceError as exc:
        return await _people_page(request, user, status=exc.http_status, error=exc.message)
    return await _people_page(request, user, result=result)


routes.post(f"{PEOPLE}/import")(admin_action(_import))


# --- 通知 ------------------------------------------------------------------------------------------


async def _notices_page(request: web.Request, user: ConsoleUser, *, status: int = 200, error: str = "") -> web.Response:
    core = core_of(request)
    groups = await console_admin.problem_notices(core)
    failed = await console_admin.failed_messages(core)
    done = request.query.get("done", "")
    return render(request, "notices", status=status, user=user, groups=groups, failed=failed, error=error, done=done)


@routes.get(NOTICES)
@admin_page
async def notices_page(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    return await _notices_page(request, user)


async def _retry(request: web.Request, user: ConsoleUser, form: Form) -> web.StreamResponse:
    raw = request.match_info["id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise web.HTTPNotFound()
    try:
        await console_admin.retry_notice(core_of(request), notice_id=int(raw), actor=user.key, source=SOURCE)
    except ServiceError as exc:
        return await _notices_page(request, user, status=exc.http_status, error=exc.message)
    raise redirect(NOTICES, done=raw)


routes.post(NOTICES + "/{id}/retry")(admin_action(_retry))


# --- 系统 ------------------------------------------------------------------------------------------


SYSTEM = f"{PREFIX}/system"
WEBHOOKS = f"{SYSTEM}/webhooks"
WEBHOOK_OPS = ("enable", "disable", "delete")


async def _system_page(
    request: web.Request, user: ConsoleUser, *, status: int = 200, error: str = "", **extra: Any
) -> web.Response:
    core = core_of(request)
    snapshot = await console_admin.system_snapshot(core, features=registry.feature_status(core.settings))
    return render(
        request,
        "system",
        status=status,
        user=user,
        s=snapshot,
        endpoints=await outbound.list_endpoints(core),
        error=error,
        done=request.query.get("done", ""),
        **extra,
    )


@routes.get(SYSTEM)
@admin_page
async def system_page(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    return await _system_page(request, user)


async def _webhook_change(request: web.Request, user: ConsoleUser, form: Form) -> web.StreamResponse:
    """Add an endpoint (its new secret is shown on this answer only, never in a link), or enable,
    disable or delete one."""
    core = core_of(request)
    op = text_field(form, "op", limit=20)
    try:
        if op == "add":
            row, secret = await outbound.add_endpoint(
                core,
                url=text_field(form, "url", limit=outbound.URL_MAX + 1),
                include_contacts=text_field(form, "include_contacts", limit=5) == "on",
                actor=user.key,
                source=SOURCE,
            )
            return await _system_page(request, user, added=row, secret=secret)
        raw = text_field(form, "id", limit=12)
        if op not in WEBHOOK_OPS or not raw.isascii() or not raw.isdigit():
            return await _system_page(request, user, status=400, error=refusal(core, "webhook_bad_request"))
        await outbound.change_endpoint(core, endpoint_id=int(raw), op=op, actor=user.key, source=SOURCE)  # type: ignore[arg-type]
    except ServiceError as exc:
        return await _system_page(request, user, status=exc.http_status, error=exc.message)
    raise redirect(SYSTEM, done=op)


routes.post(WEBHOOKS)(admin_action(_webhook_change))
