"""Admin API authentication, listing and the exits report."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from bot.clock import FrozenClock
from tests.conftest import CLOCK_START, AppFactory, admin_headers, event, post_event, started_interview


async def test_admin_endpoints_need_the_token(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    await started_interview(client, clock)
    cases = [
        ("GET", "/api/interviews"),
        ("GET", "/api/interviews/iv-1"),
        ("GET", "/api/interviews/iv-1/timeline"),
        ("GET", "/api/interviews/iv-1/answers"),
        ("GET", "/api/interviews/iv-1/todos"),
        ("GET", "/api/interviews/iv-1/notices"),
        ("POST", "/api/interviews/iv-1/terminate"),
        ("GET", f"/api/reports/exits?from={CLOCK_START.year}-01-01&to={CLOCK_START.year}-12-31"),
        ("GET", "/api/notices"),
        ("GET", "/api/intake"),
    ]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdA=="}):
        for method, path in cases:
            resp = await client.request(method, path, headers=headers, json={"reason": "候选人放弃"})
            assert resp.status == 401, (method, path, headers)
            assert resp.headers["WWW-Authenticate"] == "Bearer"
    # Nothing was terminated by the unauthorized POSTs.
    detail = await client.get("/api/interviews/iv-1", headers=admin_headers())
    assert (await detail.json())["status"] == "in_progress"


async def test_admin_api_disabled_without_token(make_client: AppFactory) -> None:
    client = await make_client(admin_token=None)
    resp = await client.get("/api/interviews", headers=admin_headers())
    assert resp.status == 503


async def test_list_filters_by_status(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    await started_interview(client, clock, "iv-1")
    await post_event(client, clock, event("interview.scheduled", "iv-2", name="李四", email="li@example.com"))
    resp = await client.get("/api/interviews?status=in_progress", headers=admin_headers())
    assert [i["id"] for i in (await resp.json())["interviews"]] == ["iv-1"]
    resp = await client.get("/api/interviews", headers=admin_headers())
    assert sorted(i["id"] for i in (await resp.json())["interviews"]) == ["iv-1", "iv-2"]
    bad = await client.get("/api/interviews?status=weird", headers=admin_headers())
    assert bad.status == 400


async def test_terminate_body_is_validated(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    await started_interview(client, clock)
    for raw in (b"nope", b"{}", b'{"reason": ""}'):
        resp = await client.post("/api/interviews/iv-1/terminate", data=raw, headers=admin_headers())
        assert resp.status in (400, 422), raw
    detail = await client.get("/api/interviews/iv-1", headers=admin_headers())
    assert (await detail.json())["status"] == "in_progress"


async def test_exit_report_counts_by_reason_in_range(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    names = [("iv-1", "张三", "候选人放弃"), ("iv-2", "李四", "掉线"), ("iv-3", "王五", "摄像头故障")]
    for interview_id, name, reason in names:
        await started_interview(client, clock, interview_id, name=name, email=f"{interview_id}@example.com")
        resp = await client.post(
            f"/api/interviews/{interview_id}/terminate", json={"reason": reason}, headers=admin_headers()
        )
        assert resp.status == 200
    local_today = clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date()
    resp = await client.get(f"/api/reports/exits?from={local_today}&to={local_today}", headers=admin_headers())
    body = await resp.json()
    assert body["total"] == 3
    assert body["by_reason"]["系统故障"] == 2
    assert body["by_reason"]["候选人放弃"] == 1
    assert body["by_reason"]["流程调整"] == 0

    yesterday = local_today - timedelta(days=1)
    resp = await client.get(f"/api/reports/exits?from={yesterday}&to={yesterday}", headers=admin_headers())
    assert (await resp.json())["total"] == 0

    bad = await client.get("/api/reports/exits?from=2026-13-01&to=2026-01-01", headers=admin_headers())
    assert bad.status == 400
    backwards = await client.get(f"/api/reports/exits?from={local_today}&to={yesterday}", headers=admin_headers())
    assert backwards.status == 400


async def test_healthz(make_client: AppFactory) -> None:
    client = await make_client()
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert (await resp.json())["status"] == "ok"


async def test_the_intake_is_listed_by_status_and_source_newest_first_in_pages(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client = await make_client()
    await started_interview(client, clock, "iv-1")
    await post_event(client, clock, event("interview.scheduled", "iv-2", name="李四", email="li@example.com"))
    resp = await client.get("/api/intake?source=platform&status=done&limit=1", headers=admin_headers())
    assert resp.status == 200
    page = await resp.json()
    [newest] = page["items"]
    assert newest["source"] == "platform" and newest["status"] == "done" and newest["order_key"] == "iv-2"
    assert "payload" not in newest  # a message's text stays out of lists
    rest = await (await client.get(page["next"], headers=admin_headers())).json()
    assert [i["order_key"] for i in rest["items"]][:1] == ["iv-1"]
    assert (await (await client.get("/api/intake?status=failed", headers=admin_headers())).json())["items"] == []
    assert (await (await client.get("/api/intake?source=wecom", headers=admin_headers())).json())["items"] == []
    bad = await client.get("/api/intake?status=dead", headers=admin_headers())
    assert bad.status == 400 and (await bad.json())["error"] == "bad_status"
