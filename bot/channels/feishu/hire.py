"""飞书招聘 (Feishu Hire): an exit written back to the candidate's application (``bot.services.ats``).

With ``FEISHU_HIRE_ENABLED`` and the app's credentials, the channel reaches the recruiting system
``feishu_hire`` and registers ``HireSender`` for its outbox rows, one call each (hire-v1, the app's
tenant token from ``FeishuApi``):

- ``interview``: ``POST /open-apis/hire/v1/external_interviews`` (external_application_id,
  participate_status 1 未参与 / 2 参与 / 3 爽约, begin/end in ms, ``external_id`` for idempotency:
  Feishu creates one interview per external_id within 24 hours; scope hire:external_application);
- ``transfer``: ``POST /open-apis/hire/v1/applications/:application_id/transfer_stage`` (stage_id);
- ``terminate``: ``POST /open-apis/hire/v1/applications/:application_id/terminate``
  (termination_type 1 / 22 / 27, termination_reason_list, termination_reason_note; scope
  hire:application).

``termination_reasons`` (``GET /open-apis/hire/v1/termination_reasons``, paged) lists the company's
reasons, for the admin's mapping (``python -m bot ats reasons``). The wire format is the one
lark-oapi's hire v1 request builders produce (the tests check the fake with lark-oapi as client).

Errors: rate limits (HTTP 429, 99991400; 10 calls/s per the docs, paced here as well) are retried
after Feishu's ``x-ogw-ratelimit-reset``; a missing permission (99991672, 99991679, HTTP 403) is
permanent and marked ``no_permission`` so HR and the 通知 page say it in Chinese.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bot.channels.feishu.api import FeishuApi, FeishuError
from bot.delivery import SendProblem
from bot.outbox import SendError
from storage.models import Notice

log = logging.getLogger(__name__)

SYSTEM = "feishu_hire"
# Feishu's answers when the app lacks a scope the call needs (app scope; user scope).
PERMISSION_CODES = frozenset({99991672, 99991679})
THROTTLE_RETRY_SECONDS = 1.0
PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class TerminationReason:
    id: str
    name: str
    termination_type: int
    active: bool


def _name(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("zh_cn") or value.get("en_us") or "")
    return str(value or "")


class HireApi:
    """The hire-v1 calls, over the channel's ``FeishuApi`` (token, errors)."""

    def __init__(self, api: FeishuApi) -> None:
        self.api = api

    async def termination_reasons(self) -> list[TerminationReason]:
        """Every termination reason of the company (children flattened after their parent)."""
        out: list[TerminationReason] = []
        token: str | None = None
        for _ in range(50):  # at most 5000 reasons; a page token that never ends stops here
            params = {"page_size": str(PAGE_SIZE), **({"page_token": token} if token else {})}
            data = (await self.api.call("GET", "/open-apis/hire/v1/termination_reasons", params=params)).get(
                "data"
            ) or {}
            for item in data.get("items") or []:
                stack = [item]
                while stack:
                    it = stack.pop(0)
                    out.append(
                        TerminationReason(
                            id=str(it.get("id", "")),
                            name=_name(it.get("name")),
                            termination_type=int(it.get("termination_type") or item.get("termination_type") or 0),
                            active=it.get("active_status", 1) == 1,
                        )
                    )
                    stack.extend(it.get("children") or [])
            token = data.get("page_token")
            if not data.get("has_more") or not token:
                break
        return out

    async def create_external_interview(self, payload: dict[str, Any]) -> str | None:
        body = {
            "external_id": payload["external_id"],
            "external_application_id": payload["external_application_id"],
            "participate_status": payload["participate_status"],
            "begin_time": payload["begin_time"],
            "end_time": payload["end_time"],
        }
        data = await self.api.call("POST", "/open-apis/hire/v1/external_interviews", json_body=body)
        created = (data.get("data") or {}).get("external_interview") or {}
        return str(created.get("id")) if created.get("id") else None

    async def transfer_stage(self, application_id: str, stage_id: str) -> None:
        await self.api.call(
            "POST", f"/open-apis/hire/v1/applications/{application_id}/transfer_stage", json_body={"stage_id": stage_id}
        )

    async def terminate(self, application_id: str, termination_type: int, reason_ids: list[str], note: str) -> None:
        body: dict[str, Any] = {"termination_type": termination_type, "termination_reason_note": note[:500]}
        if reason_ids:
            body["termination_reason_list"] = reason_ids
        await self.api.call("POST", f"/open-apis/hire/v1/applications/{application_id}/terminate", json_body=body)


def _send_error(what: str, exc: FeishuError) -> SendError:
    if exc.code in PERMISSION_CODES or (exc.status == 403 and not exc.throttled):
        return SendError(f"{what}: {exc}", permanent=True, problem=SendProblem.no_permission)
    retry = exc.retry_after or (THROTTLE_RETRY_SECONDS if exc.throttled else None)
    return SendError(f"{what}: {exc}", permanent=exc.permanent, retry_after=retry)


class HireSender:
    """Outbox rows of ``bot.services.ats`` for 飞书招聘 (channel ``feishu_hire``)."""

    channel = SYSTEM
    rate: tuple[int, float] | None = (10, 1.0)  # 接口频率限制 10 次/秒, for the app as a whole
    # Feishu creates one external interview per external_id within 24 h: an attempt cut off by a
    # crash may be sent again within that time without a second interview.
    dedupe_seconds = 24 * 3600

    def __init__(self, hire: HireApi) -> None:
        self.hire = hire

    async def send(self, notice: Notice) -> str | None:
        p = notice.payload
        call = p.get("call")
        try:
            if call == "interview":
                return await self.hire.create_external_interview(p)
            if call == "transfer":
                await self.hire.transfer_stage(str(p["application_id"]), str(p["stage_id"]))
                return None
            if call == "terminate":
                await self.hire.terminate(
                    str(p["application_id"]),
                    int(p["termination_type"]),
                    [str(i) for i in p.get("termination_reason_ids") or []],
                    str(p.get("note") or ""),
                )
                return None
        except FeishuError as exc:
            raise _send_error(f"hire {call}", exc) from exc
        except KeyError as exc:
            raise SendError(f"hire {call}: payload without {exc}", permanent=True) from exc
        raise SendError(f"hire: unknown call {call!r}", permanent=True)
