"""A fake Aliyun + Tencent Cloud SMS endpoint on loopback that checks the SDKs' real signatures.

- Aliyun dysmsapi 2017-05-25 via alibabacloud-tea-openapi 0.4: RPC style, parameters in the
  query, signed ACS3-HMAC-SHA256 (Authorization: ``ACS3-HMAC-SHA256 Credential=<ak>,
  SignedHeaders=<h1;h2>,Signature=<hex>`` over the canonical request, x-acs-content-sha256 = the
  body hash, x-acs-date fresh, x-acs-signature-nonce never reused).
- Tencent sms 2021-01-11 via tencentcloud-sdk-python-common: POST JSON, signed TC3-HMAC-SHA256
  over ``content-type;host`` with the X-TC-Timestamp date scope.

Both answer with each provider's documented JSON; ``answer_next`` queues throttling or rejection.
A request whose signature does not verify gets the provider's signature error and is recorded
in ``bad_signatures`` (tests assert that list stays empty).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.settings import CANDIDATE_NOTICE_KINDS
from tests.fakes.loopback import LoopbackFake

ACCESS_KEY_ID = "LTAI-test-key-id"
ACCESS_KEY_SECRET = "test-key-secret"
SDK_APP_ID = "1400000001"
SIGN_NAME = "测试科技"
MAX_SKEW = 900


@dataclass
class Sms:
    provider: str
    phone: str
    sign_name: str
    template: str
    params: Any  # Aliyun: dict from TemplateParam JSON; Tencent: TemplateParamSet list
    idem_key: str
    provider_id: str


@dataclass
class FakeSmsProviders(LoopbackFake):
    access_key_id: str = ACCESS_KEY_ID
    access_key_secret: str = ACCESS_KEY_SECRET
    sent: list[Sms] = field(default_factory=list)
    requests: int = 0
    bad_signatures: list[str] = field(default_factory=list)
    # Queued answers for the next requests: "ok", "throttle", "reject".
    answers: list[str] = field(default_factory=list)
    server: TestServer | None = None
    _nonces: set[str] = field(default_factory=set)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def answer_next(self, *answers: str) -> None:
        self.answers.extend(answers)

    @property
    def base_url(self) -> str:
        return self.base

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        if request.headers.get("x-acs-action"):
            return self._aliyun(request, body)
        if request.headers.get("X-TC-Action"):
            return self._tencent(request, body)
        return web.Response(status=404)

    # --- Aliyun -----------------------------------------------------------------------

    def aliyun_signature_error(self, request: web.Request, body: bytes) -> str | None:
        auth = request.headers.get("Authorization", "")
        algorithm, _, rest = auth.partition(" ")
        if algorithm != "ACS3-HMAC-SHA256":
            return f"unexpected algorithm {algorithm!r}"
        parts = dict(p.split("=", 1) for p in rest.split(","))
        if parts.get("Credential") != self.access_key_id:
            return "unknown AccessKeyId"
        signed = parts.get("SignedHeaders", "").split(";")
        for required in ("host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce"):
            if required not in signed:
                return f"{required} not signed"
        if request.headers["x-acs-content-sha256"] != hashlib.sha256(body).hexdigest():
            return "body hash mismatch"
        stamp = datetime.strptime(request.headers["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if abs((datetime.now(UTC) - stamp).total_seconds()) > MAX_SKEW:
            return "stale x-acs-date"
        nonce = request.headers["x-acs-signature-nonce"]
        if nonce in self._nonces:
            return "nonce reused"
        self._nonces.add(nonce)
        query = "&".join(f"{k}={quote(request.query[k], safe='~')}" for k in sorted(request.query))
        headers = "".join(f"{h}:{request.headers.get(h, '').strip()}\n" for h in signed)
        canonical = "\n".join(
            [request.method, request.path or "/", query, headers, ";".join(signed), hashlib.sha256(body).hexdigest()]
        )
        to_sign = f"ACS3-HMAC-SHA256\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        expected = hmac.new(self.access_key_secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts.get("Signature", "")):
            return "signature mismatch"
        return None

    def _aliyun(self, request: web.Request, body: bytes) -> web.Response:
        request_id = f"REQ-{next(self._seq)}"
        problem = self.aliyun_signature_error(request, body)
        if problem:
            self.bad_signatures.append(f"aliyun: {problem}")
            return web.json_response(
                {"Code": "SignatureDoesNotMatch", "Message": problem, "RequestId": request_id}, status=400
            )
        q = request.query
        if request.headers["x-acs-action"] != "SendSms" or request.headers.get("x-acs-version") != "2017-05-25":
            return web.json_response({"Code": "InvalidAction.NotFound", "RequestId": request_id}, status=404)
        answer = self.answers.pop(0) if self.answers else "ok"
        if answer == "throttle":
            return web.json_response(
                {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发号码天级流控", "RequestId": request_id}
            )
        if answer == "reject":
            return web.json_response(
                {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号", "RequestId": request_id}
            )
        biz_id = f"{900000 + len(self.sent)}^0"
        self.sent.append(
            Sms(
                provider="aliyun",
                phone=q["PhoneNumbers"],
                sign_name=q["SignName"],
                template=q["TemplateCode"],
                params=json.loads(q.get("TemplateParam", "{}")),
                idem_key=q.get("OutId", ""),
                provider_id=biz_id,
            )
        )
        return web.json_response({"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id})

    # --- Tencent ----------------------------------------------------------------------

    def tencent_signature_error(self, request: web.Request, body: bytes) -> str | None:
        auth = request.headers.get("Authorization", "")
        algorithm, _, rest = auth.partition(" ")
        if algorithm != "TC3-HMAC-SHA256":
            return f"unexpected algorithm {algorithm!r}"
        parts = dict(p.strip().split("=", 1) for p in rest.split(","))
        secret_id, date, service, terminator = parts.get("Credential", "").split("/")
        if secret_id != self.access_key_id or service != "sms" or terminator != "tc3_request":
            return "bad credential scope"
        if parts.get("SignedHeaders") != "content-type;host":
            return "unexpected signed headers"
        timestamp = int(request.headers.get("X-TC-Timestamp", "0"))
        if abs(time.time() - timestamp) > MAX_SKEW:
            return "stale X-TC-Timestamp"
        if datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d") != date:
            return "date scope does not match the timestamp"
        canonical = "\n".join(
            [
                request.method,
                request.path or "/",
                "",
                f"content-type:{request.headers['Content-Type']}\nhost:{request.headers['Host']}\n",
                "content-type;host",
                hashlib.sha256(body).hexdigest(),
            ]
        )
        to_sign = (
            f"TC3-HMAC-SHA256\n{timestamp}\n{date}/sms/tc3_request\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        )

        def mac(key: bytes, msg: str) -> bytes:
            return hmac.new(key, msg.encode(), hashlib.sha256).digest()

        key = mac(mac(mac(f"TC3{self.access_key_secret}".encode(), date), "sms"), "tc3_request")
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts.get("Signature", "")):
            return "signature mismatch"
        return None

    @staticmethod
    def _tencent_json(data: dict[str, Any]) -> web.Response:
        # The SDK only parses errors when Content-Type is exactly application/json (no charset).
        return web.Response(
            body=json.dumps({"Response": data}, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json"},
        )

    def _tencent(self, request: web.Request, body: bytes) -> web.Response:
        request_id = f"tc-{next(self._seq)}"
        problem = self.tencent_signature_error(request, body)
        if problem:
            self.bad_signatures.append(f"tencent: {problem}")
            return self._tencent_json(
                {"Error": {"Code": "AuthFailure.SignatureFailure", "Message": problem}, "RequestId": request_id}
            )
        if request.headers["X-TC-Action"] != "SendSms" or request.headers.get("X-TC-Version") != "2021-01-11":
            return self._tencent_json({"Error": {"Code": "InvalidAction", "Message": "?"}, "RequestId": request_id})
        data = json.loads(body)
        if data.get("SmsSdkAppId") != SDK_APP_ID:
            return self._tencent_json(
                {"Error": {"Code": "FailedOperation.SmsSdkAppIdVerifyFail", "Message": "?"}, "RequestId": request_id}
            )
        phone = data["PhoneNumberSet"][0]
        answer = self.answers.pop(0) if self.answers else "ok"
        if answer == "throttle":
            status = {
                "Code": "LimitExceeded.PhoneNumberThirtySecondLimit",
                "Message": "单个手机号30秒内下发短信条数超过设定的上限",
                "SerialNo": "",
                "PhoneNumber": phone,
                "Fee": 0,
                "SessionContext": data.get("SessionContext", ""),
                "IsoCode": "CN",
            }
        elif answer == "reject":
            status = {
                "Code": "InvalidParameterValue.IncorrectPhoneNumber",
                "Message": "手机号格式错误",
                "SerialNo": "",
                "PhoneNumber": phone,
                "Fee": 0,
                "SessionContext": data.get("SessionContext", ""),
                "IsoCode": "CN",
            }
        else:
            serial = f"2028:{next(self._seq)}"
            self.sent.append(
                Sms(
                    provider="tencent",
                    phone=phone,
                    sign_name=data["SignName"],
                    template=data["TemplateId"],
                    params=data.get("TemplateParamSet", []),
                    idem_key=data.get("SessionContext", ""),
                    provider_id=serial,
                )
            )
            status = {
                "Code": "Ok",
                "Message": "send success",
                "SerialNo": serial,
                "PhoneNumber": phone,
                "Fee": 1,
                "SessionContext": data.get("SessionContext", ""),
                "IsoCode": "CN",
            }
        return self._tencent_json({"SendStatusSet": [status], "RequestId": request_id})


TEMPLATES = {
    kind: {"code": f"SMS_{i:03d}", "params": ["candidate_name", "position"]}
    for i, kind in enumerate(CANDIDATE_NOTICE_KINDS, start=1)
}
TEMPLATES["terminated"] = {"code": "SMS_TERM", "params": ["candidate_name", "reason", "company"]}


def sms_settings(fake: FakeSmsProviders, provider: str, **overrides: Any) -> dict[str, Any]:
    """Settings overrides that send SMS by ``provider`` (aliyun or tencent) to ``fake``, one template a kind."""
    values: dict[str, Any] = {
        "sms_provider": provider,
        "sms_access_key_id": ACCESS_KEY_ID,
        "sms_access_key_secret": ACCESS_KEY_SECRET,
        "sms_sign_name": SIGN_NAME,
        "sms_sdk_app_id": SDK_APP_ID,
        "sms_endpoint": fake.base_url,
        "sms_timeout_seconds": 5,
        "sms_templates": json.dumps(TEMPLATES),
    }
    values.update(overrides)
    return values
