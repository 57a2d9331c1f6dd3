"""The published contract (bot/api/openapi.py): valid OpenAPI 3.1, the committed copy is what the code
builds, every example is taken by the running service, the platform calls we make and the answers we
give match what it documents, and ``events check`` says exactly what is wrong with a sample."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, Literal

import aiohttp
from aiohttp import web
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from pydantic import BaseModel, ConfigDict

from bot.api.openapi import build_openapi, render
from bot.clock import FrozenClock, SystemClock
from bot.platform_client import PlatformClient
from bot.services import outbound
from tests.conftest import (
    PLATFORM_SECRET,
    AppFactory,
    admin_headers,
    event,
    eventually,
    post_event,
    sign,
    started_interview,
)
from tests.fakes.platform import FakePlatform
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.serve import run_cli, running_service, service_env

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "openapi.json"
EVENTS = "/api/platform/events"
SIGNED_CALL = ["X-Bot-Timestamp", "X-Bot-Signature", "Idempotency-Key"]


def schema_validator(doc: dict[str, Any], name: str) -> OAS31Validator:
    """A JSON Schema validator for one component of the document, its $refs resolved in the document."""
    return OAS31Validator({"$ref": f"#/components/schemas/{name}", "components": doc["components"]})


def answer_schema(doc: dict[str, Any], status: int) -> OAS31Validator:
    responses = doc["paths"][EVENTS]["post"]["responses"]
    assert str(status) in responses, f"answer {status} is not documented"
    ref = responses[str(status)]["content"]["application/json"]["schema"]["$ref"]
    return schema_validator(doc, ref.rsplit("/", 1)[1])


async def test_served_document_is_openapi_31_and_the_committed_copy(make_client: AppFactory) -> None:
    client = await make_client()
    resp = await client.get("/api/openapi.json")  # no auth
    assert resp.status == 200 and resp.content_type == "application/json"
    served = await resp.json()
    validate(served)  # raises on anything that is not valid OpenAPI 3.1
    assert served["openapi"] == "3.1.0"
    built = render(build_openapi())
    assert COMMITTED.read_text(encoding="utf-8") == built, (
        "docs/openapi.json is stale: run python -m bot events openapi -o docs/openapi.json"
    )
    assert served == json.loads(built)
    # What a vendor needs is in it.
    post = served["paths"][EVENTS]["post"]
    assert {"200", "400", "401", "413", "422", "503"} <= set(post["responses"])
    assert "Retry-After" in post["responses"]["503"]["headers"]
    assert [p["name"] for p in post["parameters"]] == ["X-Bot-Timestamp", "X-Bot-Signature"]
    assert "300 s" in post["parameters"][0]["description"]
    assert "event_id" in post["description"] and "duplicate" in post["description"]
    union = served["components"]["schemas"]["PlatformEvent"]
    assert union["discriminator"]["propertyName"] == "type" and len(union["oneOf"]) == 6
    outbound_types = {model.model_fields["type"].default for model in outbound.OUTBOUND_EVENTS}
    assert set(served["webhooks"]) == {"platformSave", "platformTerminate", *outbound_types}
    for hook in served["webhooks"].values():
        assert [p["name"] for p in hook["post"]["parameters"]] == SIGNED_CALL
    for name in ("platformSave", "platformTerminate"):
        assert "409" in served["webhooks"][name]["post"]["responses"]
    assert {"/api/interviews", "/api/interviews/{id}", "/api/interviews/{id}/terminate", "/api/notices"} <= set(
        served["paths"]
    )
    assert "Idempotency-Key" in served["info"]["description"]


async def test_the_window_served_is_the_one_configured(make_client: AppFactory) -> None:
    client = await make_client(signature_max_skew_seconds=120)
    served = await (await client.get("/api/openapi.json")).json()
    validate(served)
    assert "120 s" in served["paths"][EVENTS]["post"]["parameters"][0]["description"]


async def test_every_example_is_taken_by_the_running_service(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    doc = await (await client.get("/api/openapi.json")).json()
    examples = doc["paths"][EVENTS]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == {s["properties"]["type"]["const"] for s in _typed(doc)}
    events_schema = schema_validator(doc, "PlatformEvent")
    taken = answer_schema(doc, 200)
    for name, example in examples.items():
        events_schema.validate(example["value"])  # the document's own schema accepts it
        resp = await post_event(client, clock, example["value"])
        assert resp.status == 200, (name, await resp.text())
        body = await resp.json()
        taken.validate(body)  # an answer the document lists
        assert body["status"] != "duplicate" and body["event_id"] == example["value"]["event_id"]
        again = await post_event(client, clock, example["value"])  # a repeat: recognised by event_id
        assert await again.json() == {"status": "duplicate", "event_id": example["value"]["event_id"]}

    async def all_applied() -> bool:
        resp = await client.get("/api/interviews/iv-1001", headers=admin_headers())
        detail = await resp.json() if resp.status == 200 else {}
        return detail.get("status") == "completed" and detail.get("answered") == 1

    await eventually(all_applied)


def _typed(doc: dict[str, Any]) -> list[dict[str, Any]]:
    schemas = doc["components"]["schemas"]
    return [schemas[ref["$ref"].rsplit("/", 1)[1]] for ref in schemas["PlatformEvent"]["oneOf"]]


async def test_refusals_are_the_documented_answers(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client(max_body_bytes=2048)
    doc = await (await client.get("/api/openapi.json")).json()
    body = json.dumps(event("interview.scheduled")).encode()
    ts = int(clock.now().timestamp())

    resp = await client.post(EVENTS, data=body, headers=sign(body, ts - 301))  # outside the window
    assert resp.status == 401
    answer_schema(doc, 401).validate(await resp.json())
    resp = await post_event(client, clock, {**event("interview.scheduled"), "type": "interview.exploded"})
    assert resp.status == 400 and (await resp.json())["error"] == "unknown_event_type"
    answer_schema(doc, 400).validate(await resp.json())
    resp = await post_event(client, clock, {**event("interview.scheduled"), "event_id": ""})
    assert resp.status == 422
    answer_schema(doc, 422).validate(await resp.json())
    big = json.dumps({**event("interview.scheduled"), "pad": "x" * 4096}).encode()
    resp = await client.post(EVENTS, data=big, headers=sign(big, ts))
    assert resp.status == 413
    assert "413" in doc["paths"][EVENTS]["post"]["responses"]

    off = await make_client(platform_webhook_secret=None)
    resp = await off.post(EVENTS, data=body, headers=sign(body, ts))
    assert resp.status == 503
    answer_schema(doc, 503).validate(await resp.json())


async def test_platform_calls_are_what_the_webhooks_say(
    make_client: AppFactory, clock: FrozenClock, fake_platform: FakePlatform
) -> None:
    assert fake_platform.server is not None
    client = await make_client(platform_api_base=str(fake_platform.server.make_url("")))
    doc = await (await client.get("/api/openapi.json")).json()
    await started_interview(client, clock)
    resp = await client.post("/api/interviews/iv-1/terminate", json={"reason": "候选人放弃"}, headers=admin_headers())
    assert resp.status == 200, await resp.text()
    hooks = {"save": "platformSave", "terminate": "platformTerminate"}
    assert [c[0] for c in fake_platform.calls] == ["save", "terminate"]
    for (action, _, body), (_, _, key) in zip(fake_platform.calls, fake_platform.keys, strict=True):
        ref = doc["webhooks"][hooks[action]]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema_validator(doc, ref.rsplit("/", 1)[1]).validate(body)
        assert key is not None and key.startswith(f"{action}-")
        assert f"`{action}-<job id>`" in doc["webhooks"][hooks[action]]["post"]["description"]
    assert fake_platform.rejected == 0  # signed as documented


class ExitRecordedSample(BaseModel):
    """An exit was recorded (a sample outbound event model, as helper models will be)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"event_id": "out-1", "type": "exit.recorded"}]})
    event_id: str
    type: Literal["exit.recorded"] = "exit.recorded"


def test_outbound_event_models_become_signed_webhooks() -> None:
    doc = build_openapi(outbound_events=(ExitRecordedSample,))
    validate(doc)
    hook = doc["webhooks"]["exit.recorded"]["post"]
    assert [p["name"] for p in hook["parameters"]] == SIGNED_CALL
    assert hook["requestBody"]["content"]["application/json"]["examples"]["example"]["value"]["event_id"] == "out-1"
    schema_validator(doc, "ExitRecordedSample").validate({"event_id": "out-2", "type": "exit.recorded"})
    assert "2XX" in hook["responses"] and "Idempotency-Key" in hook["description"]


# A malformed sample, and the line ``events check`` must print for it (path: Chinese label (message)).
LONG_ID = "e" * 129
MALFORMED: dict[str, tuple[Any, list[str], int]] = {
    "no_name.json": (
        {**event("interview.scheduled"), "interview": {"id": "iv-1", "candidate": {"mobile": "1"}}},
        ["interview.candidate.name:缺少必填字段(Field required)"],
        422,
    ),
    "naive_time.json": (
        {**event("interview.started"), "occurred_at": "2026-03-02T14:00:00"},
        ["occurred_at:时间必须带时区(Input should have timezone info)"],
        422,
    ),
    "ahead.json": (
        {**event("interview.activity"), "occurred_at": "2999-01-01T00:00:00+08:00"},
        ["occurred_at:取值不合法(Value error, occurred_at is more than 300 s ahead of the service clock)"],
        422,
    ),
    "year_3000.json": (
        {**event("interview.activity"), "occurred_at": "3000-01-02T00:00:00+08:00"},
        ["occurred_at:取值不合法(Value error, time out of range (1970–2999))"],
        422,
    ),
    "long_id.json": (
        {**event("interview.completed"), "event_id": LONG_ID},
        ["event_id:太长(String should have at most 128 characters)"],
        422,
    ),
    "negative_question.json": (
        event("interview.answer_saved", data={"question_no": -1}),
        ["data.question_no:数值太小(Input should be greater than or equal to 0)"],
        422,
    ),
    "no_question.json": (
        event("interview.answer_saved", data={"media_url": "https://oss.example.com/1.mp4"}),
        ["data.question_no:缺少必填字段(Field required)"],
        422,
    ),
    "wants_exit.json": (
        event("interview.help_requested", data={"wants_exit": "maybe"}),
        ["data.wants_exit:应为 true 或 false(Input should be a valid boolean, unable to interpret input)"],
        422,
    ),
    "two_at_once.json": (
        {**event("interview.answer_saved", data={"question_no": "x"}), "event_id": ""},
        [
            "event_id:不能为空或太短(String should have at least 1 character)",
            "data.question_no:应为整数(Input should be a valid integer, unable to parse string as an integer)",
        ],
        422,
    ),
    "odd_type.json": (
        {**event("interview.started"), "type": "interview.exploded"},
        ["type:未知的事件类型(unknown event type 'interview.exploded'; known: interview.scheduled,"],
        400,
    ),
    "a_list.json": ([event("interview.started")], ["(整个事件):事件应为一个 JSON 对象(expected a JSON object"], 400),
}


async def test_events_check_says_exactly_what_is_wrong(
    clean_db: str, tmp_path: Path, make_client: AppFactory, clock: FrozenClock
) -> None:
    client = await make_client()
    for name, (sample, _, status) in MALFORMED.items():
        (tmp_path / name).write_text(json.dumps(sample, ensure_ascii=False), encoding="utf-8")
        # The service refuses each the way check says it will.
        body = json.dumps(sample, ensure_ascii=False).encode()
        resp = await client.post(EVENTS, data=body, headers=sign(body, int(clock.now().timestamp())))
        assert resp.status == status, (name, await resp.text())
    (tmp_path / "nan.json").write_text('{"type": NaN}', encoding="utf-8")
    doc = build_openapi()
    good = doc["paths"][EVENTS]["post"]["requestBody"]["content"]["application/json"]["examples"]
    for kind, example in good.items():
        (tmp_path / f"{kind}.json").write_text(json.dumps(example["value"], ensure_ascii=False), encoding="utf-8")

    env = service_env(clean_db)
    code, out, err = await run_cli(env, "events", "check", *(f"{k}.json" for k in good), cwd=tmp_path)
    assert code == 0, err
    assert out.count("✓") == len(good) and "✗" not in out

    code, out, err = await run_cli(env, "events", "check", *MALFORMED, "nan.json", "missing.json", cwd=tmp_path)
    assert code == 1 and out == ""
    blocks = {block.split(":", 1)[0].lstrip("✗ "): block for block in err.split("\n✗ ")}
    for name, (_, lines, status) in MALFORMED.items():
        block = blocks[name]
        assert f"服务会以 {status} 拒绝" in block, block
        found = [line.strip()[2:] for line in block.splitlines() if line.strip().startswith("- ")]
        assert len(found) == len(lines), block
        for want, got in zip(lines, found, strict=True):
            assert got.startswith(want), (want, got)
    assert "nan.json:不是服务能接受的 JSON(JSON 格式错误" in err and "服务会以 400 拒绝" in blocks["nan.json"]
    assert "missing.json:无法读取" in err
    assert f"共 {len(MALFORMED) + 2} 个文件,0 个符合" in err


async def test_events_openapi_writes_the_committed_document(clean_db: str, tmp_path: Path) -> None:
    code, _, err = await run_cli(service_env(clean_db), "events", "openapi", "-o", "openapi.json", cwd=tmp_path)
    assert code == 0, err
    assert (tmp_path / "openapi.json").read_text(encoding="utf-8") == COMMITTED.read_text(encoding="utf-8")


def vendor_python_blocks() -> list[str]:
    """The Python examples of the README's vendor section, in order: the signer, then the verifier."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## 面试平台对接(给平台厂商)", 1)[1].split("\n## ", 1)[0]
    assert section.lstrip().startswith("**从对接文档开始**:[`docs/openapi.json`]")  # it starts from the document
    return [block.split("```", 1)[0] for block in section.split("```python\n")[1:]]


async def test_readme_signer_is_taken_by_a_running_service(clean_db: str, tmp_path: Path) -> None:
    signer = vendor_python_blocks()[0]
    assert len([line for line in signer.splitlines() if line.strip()]) <= 11
    env = service_env(clean_db)
    async with running_service(env, tmp_path) as service:
        code = signer.replace("http://127.0.0.1:8080", service.url).replace("try-it-locally", PLATFORM_SECRET)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, err.decode()
    assert json.loads(out) == {"status": "accepted", "event_id": "evt-0002"}


async def test_readme_verifier_accepts_our_platform_calls(aiohttp_server: Any) -> None:
    namespace: dict[str, Any] = {}
    exec(vendor_python_blocks()[1], namespace)
    verify = namespace["verify"]
    secret = "platform-shared-secret"
    seen: list[tuple[bool, bool, str | None]] = []

    async def receive(request: web.Request) -> web.Response:
        raw = await request.read()
        good = verify(secret.encode(), request.headers, raw)
        tampered = verify(secret.encode(), request.headers, raw.replace(b"quit", b"QUIT"))
        seen.append((good, tampered, request.headers.get("Idempotency-Key")))
        return web.json_response({"ok": True} if good else {"ok": False}, status=200 if good else 401)

    app = web.Application()
    app.router.add_post("/interviews/{id}/{action}", receive)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as http:
        platform = PlatformClient(http, base_url=str(server.make_url("")), secret=secret, clock=SystemClock())
        await platform.save_progress("iv-1", idempotency_key="save-7")
        await platform.terminate(
            "iv-1",
            reason_code="candidate_quit",
            reason="候选人放弃",
            operator="wecom:hr01",
            idempotency_key="terminate-7",
        )
    assert seen == [(True, True, "save-7"), (True, False, "terminate-7")]  # save's body {} has nothing to tamper


async def test_outbound_events_sent_are_what_the_published_webhooks_say(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    """Every outbound event type is a signed webhook in the document, its example fits its schema, and
    what the running service really sends to an endpoint fits it too."""
    receiver = WebhookReceiver(secrets={"erp": "erp-secret"}, now=lambda: clock.now().timestamp())
    await receiver.start()
    try:
        client = await make_client(webhook_urls=receiver.url("erp"), webhook_secret="erp-secret")
        doc = await (await client.get("/api/openapi.json")).json()
        validate(doc)
        for model in outbound.OUTBOUND_EVENTS:
            name = model.model_fields["type"].default
            hook = doc["webhooks"][name]["post"]
            assert [p["name"] for p in hook["parameters"]] == SIGNED_CALL
            body = hook["requestBody"]["content"]["application/json"]
            schema = schema_validator(doc, body["schema"]["$ref"].rsplit("/", 1)[1])
            schema.validate(body["examples"]["example"]["value"])
            model.model_validate(body["examples"]["example"]["value"])
        await started_interview(client, clock)
        resp = await client.post(
            "/api/interviews/iv-1/terminate", json={"reason": "候选人放弃"}, headers=admin_headers()
        )
        assert resp.status == 200, await resp.text()
        await eventually(lambda: bool(receiver.delivered("erp", "interview.terminated")), 10, "the exit event")
        assert receiver.refused == []
        for sent in receiver.delivered("erp"):
            ref = doc["webhooks"][sent.event_type]["post"]["requestBody"]["content"]["application/json"]["schema"]
            schema_validator(doc, ref["$ref"].rsplit("/", 1)[1]).validate(sent.body)
            assert sent.key == sent.body["event_id"]
    finally:
        await receiver.close()
