"""What an operator's tooling reads: ``GET /metrics`` (Prometheus) and ``GET /readyz``.

``/healthz`` (in ``bot.app``) is liveness: the process answers and reaches its database.
``/readyz`` is readiness, for a load balancer deciding whether to send this replica traffic: the
database answers, its schema is at the newest migration, and no enabled long connection that this
replica should hold is still connecting (up, standby — another replica holds it — and stopped on
purpose are ready). It answers 200 ``{"status": "ready", ...}`` or 503 with
``"not_ready"`` naming each part that is not.

``/metrics`` needs ``Authorization: Bearer`` BOT_METRICS_TOKEN, or the admin token when that is
not set; with neither it is off (503).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from bot.bounded import ascii_equal
from bot.channels import registry
from bot.keys import CORE, ENGINE
from bot.metrics import CONTENT_TYPE
from bot.services.leases import LinkState
from storage.db import schema_head, schema_revision

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


def _require_metrics_token(request: web.Request) -> None:
    settings = request.app[CORE].settings
    token = settings.metrics_token or settings.admin_token
    if token is None or not token.get_secret_value():
        raise web.HTTPServiceUnavailable(text="metrics are off: set BOT_METRICS_TOKEN or BOT_ADMIN_TOKEN\n")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not ascii_equal(token.get_secret_value(), given.strip()):
        raise web.HTTPUnauthorized(text="bearer token required\n", headers={"WWW-Authenticate": "Bearer"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    _require_metrics_token(request)
    core = request.app[CORE]
    try:
        await core.metrics.refresh_db_gauges(core.sessions)
    except Exception as exc:  # noqa: BLE001 - the process metrics still help when the database is away
        log.error("metrics: database gauges not refreshed: %s", type(exc).__name__)
    resp = web.Response(body=core.metrics.exposition(registry.connections(request.app)))
    resp.headers["Content-Type"] = CONTENT_TYPE
    return resp


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    problems: dict[str, str] = {}
    body: dict[str, Any] = {}
    try:
        revision = await schema_revision(request.app[ENGINE])
    except Exception as exc:  # noqa: BLE001 - readiness must answer, not raise
        problems["database"] = f"unreachable or not migrated: {type(exc).__name__}"
    else:
        head = schema_head()
        body["schema"] = revision
        if revision != head:
            problems["migrations"] = f"database at {revision}, code expects {head}"
    connections = registry.connections(request.app)
    body["connections"] = connections
    for name, state in connections.items():
        if state == LinkState.connecting:  # this replica should hold it and has not got it
            problems[name] = state
    if problems:
        log.warning("not ready: %s", problems)
        return web.json_response({"status": "not_ready", "not_ready": problems, **body}, status=503)
    return web.json_response({"status": "ready", **body})
