"""The platform calls' contract: one quoted path segment per interview id, only the documented
success answer counts, and ``Idempotency-Key`` goes with every call."""

from __future__ import annotations

from urllib.parse import quote

from bot.clock import FrozenClock
from tests.conftest import AppFactory, admin_headers, started_interview
from tests.fakes.platform import FakePlatform

TRICKY_ID = "../../admin?x="


async def test_interview_id_stays_one_path_segment(
    make_client: AppFactory, clock: FrozenClock, fake_platform: FakePlatform
) -> None:
    assert fake_platform.server is not None
    client = await make_client(platform_api_base=str(fake_platform.server.make_url("")) + "/")
    await started_interview(client, clock, TRICKY_ID)

    resp = await client.post(
        f"/api/interviews/{quote(TRICKY_ID, safe='')}/terminate",
        json={"reason": "候选人放弃"},
        headers=admin_headers(),
    )
    assert resp.status == 200, await resp.text()
    assert fake_platform.stray == []  # nothing went outside /interviews/<id>/…
    assert [(c[0], c[1]) for c in fake_platform.calls] == [("save", TRICKY_ID), ("terminate", TRICKY_ID)]


async def test_non_json_success_is_not_a_save(
    make_client: AppFactory, clock: FrozenClock, fake_platform: FakePlatform
) -> None:
    assert fake_platform.server is not None
    client = await make_client(platform_api_base=str(fake_platform.server.make_url("")))
    await started_interview(client, clock)
    fake_platform.raw_answer = "<html>login</html>"

    resp = await client.post("/api/interviews/iv-1/terminate", json={"reason": "候选人放弃"}, headers=admin_headers())
    assert resp.status == 502
    body = await resp.json()
    assert body["error"] == "save_failed"
    assert "无法识别的应答" in body["message"]
    assert fake_platform.actions() == ["save"]  # never asked to terminate
    detail = await (await client.get("/api/interviews/iv-1", headers=admin_headers())).json()
    assert detail["status"] == "in_progress" and detail["exit"] is None

    fake_platform.raw_answer = '{"ok": false}'
    resp = await client.post("/api/interviews/iv-1/terminate", json={"reason": "候选人放弃"}, headers=admin_headers())
    assert resp.status == 502


async def test_calls_carry_idempotency_keys(
    make_client: AppFactory, clock: FrozenClock, fake_platform: FakePlatform
) -> None:
    assert fake_platform.server is not None
    client = await make_client(platform_api_base=str(fake_platform.server.make_url("")))
    await started_interview(client, clock)
    resp = await client.post("/api/interviews/iv-1/terminate", json={"reason": "候选人放弃"}, headers=admin_headers())
    assert resp.status == 200, await resp.text()
    (save_key, terminate_key) = [k for _, _, k in fake_platform.keys]
    assert save_key is not None and save_key.startswith("save-")
    assert terminate_key == "terminate-" + save_key.removeprefix("save-")


async def test_already_terminated_on_the_platform_counts_as_terminated(
    make_client: AppFactory, clock: FrozenClock, fake_platform: FakePlatform
) -> None:
    assert fake_platform.server is not None
    client = await make_client(platform_api_base=str(fake_platform.server.make_url("")))
    await started_interview(client, clock)
    fake_platform.terminated.append("iv-1")  # someone ended it on the platform already: save answers 409

    resp = await client.post("/api/interviews/iv-1/terminate", json={"reason": "候选人放弃"}, headers=admin_headers())
    assert resp.status == 200, await resp.text()
    assert fake_platform.actions() == ["save"]  # nothing left to terminate there
    detail = await (await client.get("/api/interviews/iv-1", headers=admin_headers())).json()
    assert detail["status"] == "terminated"
    assert detail["exit"]["progress_snapshot"]["platform_terminate"] == {"status": "terminated"}
    assert len(detail["notices"]) == 1 and len(detail["todos"]) == 1
