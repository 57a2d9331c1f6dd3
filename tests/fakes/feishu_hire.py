"""The 飞书招聘 (hire-v1) endpoints beside the fake Feishu open platform, on the same loopback server
and tenant token: termination_reasons (paged), external_interviews (create, one per external_id),
applications/:application_id/transfer_stage and /terminate, with the documented JSON
(``{"code": 0, "msg": "success", "data": ...}``). Written from the hire-v1 documentation; the tests
check it with lark-oapi's own hire v1 client.

State and error injection: ``applications`` (application id → {"stage_id", "termination"}),
``external_applications`` (ids that exist), ``denied`` (scopes the app lacks: the call answers
99991672 "Access denied", as Feishu does for a scope not granted), ``hire_failures`` (queued
(status, code, headers) answers for the next hire calls, e.g. a rate limit).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.feishu_api import FakeFeishu

# The company's termination reasons as the list endpoint returns them (a parent with children).
REASONS: list[dict[str, Any]] = [
    {
        "id": "6891560630172518670",
        "name": {"zh_cn": "候选人未参加面试", "en_us": "Candidate did not attend"},
        "referral_name": {"zh_cn": "候选人未参加面试", "en_us": "Candidate did not attend"},
        "termination_type": 22,
        "is_used_as_evaluation": False,
        "active_status": 1,
        "children": [
            {
                "id": "6891560630172518671",
                "name": {"zh_cn": "候选人中途放弃", "en_us": "Candidate gave up"},
                "referral_name": {"zh_cn": "候选人中途放弃", "en_us": "Candidate gave up"},
                "termination_type": 22,
                "is_used_as_evaluation": False,
                "active_status": 1,
            }
        ],
    },
    {
        "id": "6891560630172518672",
        "name": {"zh_cn": "能力不匹配", "en_us": "Not qualified"},
        "referral_name": {"zh_cn": "能力不匹配", "en_us": "Not qualified"},
        "termination_type": 1,
        "is_used_as_evaluation": True,
        "active_status": 1,
    },
    {
        "id": "6891560630172518673",
        "name": {"zh_cn": "其他", "en_us": "Other"},
        "referral_name": {"zh_cn": "其他", "en_us": "Other"},
        "termination_type": 27,
        "is_used_as_evaluation": False,
        "active_status": 2,
    },
]
SCOPE_APPLICATION = "hire:application"
SCOPE_EXTERNAL = "hire:external_application"


@dataclass
class FakeFeishuHire(FakeFeishu):
    applications: dict[str, dict[str, Any]] = field(default_factory=dict)
    external_applications: set[str] = field(default_factory=set)
    external_interviews: list[dict[str, Any]] = field(default_factory=list)
    # Every hire call received: (method, path, JSON body or query).
    hire_calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    denied: set[str] = field(default_factory=set)
    hire_failures: list[tuple[int, int, dict[str, str]]] = field(default_factory=list)
    reasons_page_size: int = 2
    _hire_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(7_300_000_000_000_000_000))

    def add_routes(self, app: web.Application) -> None:
        super().add_routes(app)
        app.router.add_get("/open-apis/hire/v1/termination_reasons", self._reasons)
        app.router.add_post("/open-apis/hire/v1/external_interviews", self._external_interview)
        app.router.add_post("/open-apis/hire/v1/applications/{application_id}/transfer_stage", self._transfer)
        app.router.add_post("/open-apis/hire/v1/applications/{application_id}/terminate", self._terminate)

    def _refused(self, request: web.Request, scope: str) -> web.Response | None:
        refused = self._auth(request)
        if refused:
            return refused
        if scope in self.denied:
            return web.json_response(
                {
                    "code": 99991672,
                    "msg": f"Access denied. One of the following scopes is required: [{scope}].",
                    "error": {"permission_violations": [{"type": "action_scope_required", "subject": scope}]},
                },
                status=400,
            )
        if self.hire_failures:
            status, code, headers = self.hire_failures.pop(0)
            self.failed_calls += 1
            return web.json_response(
                {"code": code, "msg": "request trigger frequency limit"}, status=status, headers=headers
            )
        return None

    @staticmethod
    def _ok(data: dict[str, Any] | None = None) -> web.Response:
        return web.json_response({"code": 0, "msg": "success", "data": data or {}})

    @staticmethod
    def _invalid(msg: str) -> web.Response:
        return web.json_response({"code": 99992402, "msg": f"field validation failed: {msg}"}, status=400)

    async def _reasons(self, request: web.Request) -> web.Response:
        self.hire_calls.append(("GET", request.path, dict(request.query)))
        refused = self._refused(request, SCOPE_APPLICATION)
        if refused:
            return refused
        size = int(request.query.get("page_size") or 10)
        if not 1 <= size <= 200:
            return self._invalid("page_size")
        size = min(size, self.reasons_page_size)
        start = int(request.query.get("page_token") or 0)
        items = REASONS[start : start + size]
        more = start + size < len(REASONS)
        return self._ok({"items": items, "has_more": more, **({"page_token": str(start + size)} if more else {})})

    async def _external_interview(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.hire_calls.append(("POST", request.path, body))
        refused = self._refused(request, SCOPE_EXTERNAL)
        if refused:
            return refused
        if body.get("external_application_id") not in self.external_applications:
            return self._invalid("external_application_id")
        if body.get("participate_status") not in (None, 1, 2, 3):
            return self._invalid("participate_status")
        for key in ("begin_time", "end_time"):
            if key in body and not isinstance(body[key], int):
                return self._invalid(key)
        external_id = body.get("external_id")
        for existing in self.external_interviews:  # "同一 external_id 24 小时内仅可创建一次"
            if external_id and existing["external_id"] == external_id:
                return self._ok({"external_interview": existing})
        created = {**body, "id": str(next(self._hire_ids))}
        self.external_interviews.append(created)
        return self._ok({"external_interview": created})

    def _application(self, request: web.Request) -> dict[str, Any] | None:
        return self.applications.get(request.match_info["application_id"])

    async def _transfer(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.hire_calls.append(("POST", request.path, body))
        refused = self._refused(request, SCOPE_APPLICATION)
        if refused:
            return refused
        application = self._application(request)
        if application is None or not isinstance(body.get("stage_id"), str) or not body["stage_id"]:
            return self._invalid("application_id or stage_id")
        application["stage_id"] = body["stage_id"]
        return self._ok()

    async def _terminate(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.hire_calls.append(("POST", request.path, body))
        refused = self._refused(request, SCOPE_APPLICATION)
        if refused:
            return refused
        application = self._application(request)
        if application is None or body.get("termination_type") not in (1, 22, 27):
            return self._invalid("application_id or termination_type")
        known = {r["id"] for r in REASONS} | {c["id"] for r in REASONS for c in r.get("children", [])}
        if any(i not in known for i in body.get("termination_reason_list") or []):
            return self._invalid("termination_reason_list")
        application["termination"] = body
        return self._ok()
