"""SMS notices through Aliyun (dysmsapi 2017-05-25 SendSms) or Tencent Cloud (sms 2021-01-11 SendSms).

Chinese SMS must use templates approved by the provider, so a notice is not sent as its
rendered text: SMS_TEMPLATES maps the notice kind to the provider's template code and the
names of the notice context variables that fill it (``payload["ctx"]``, stored by
bot/services/notices.py). The official SDKs are blocking; their calls run in a thread.

Idempotency: the notice's key on this channel (bot.outbox.idem_key, ``notice-<id>-sms``) goes
to the provider as Aliyun's OutId and Tencent's SessionContext, so a provider-side record can
always be matched to the notice (neither API deduplicates on it; the outbox's attempt rows do).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import urlsplit

from bot.outbox import SendError, idem_key
from bot.settings import Settings, SmsTemplate
from storage.models import Notice

log = logging.getLogger(__name__)

# Provider answers that mean "later", not "never": they are retried after ``THROTTLE_RETRY_SECONDS``.
ALIYUN_THROTTLED = {"isv.BUSINESS_LIMIT_CONTROL", "Throttling", "Throttling.User", "isv.DAY_LIMIT_CONTROL"}
ALIYUN_TRANSIENT = {"isp.SYSTEM_ERROR", "isp.RAM_PERMISSION_DENY", "ServiceUnavailable", "InternalError"}
TENCENT_THROTTLED_PREFIXES = ("LimitExceeded.", "RequestLimitExceeded")
TENCENT_TRANSIENT_PREFIXES = ("InternalError", "FailedOperation.TemplateIncorrectOrUnapproved.Busy")
THROTTLE_RETRY_SECONDS = 60.0


def template_params(notice: Notice, template: SmsTemplate) -> list[tuple[str, str]]:
    """(name, value) pairs for the provider template, from the context stored with the notice."""
    ctx: dict[str, Any] = notice.payload.get("ctx") or {}
    values = []
    for name in template.params:
        value = ctx.get(name)
        if value is None:
            value = ""
        values.append((name, str(value)))
    return values


def mainland_e164(mobile: str) -> str:
    digits = mobile.strip().replace(" ", "").replace("-", "")
    if digits.startswith("+"):
        return digits
    return f"+86{digits}"


class _SmsSender:
    channel = "sms"
    # One SMS per 30 s to one number (Tencent's and Aliyun's default per-number limit is about 1/min).
    rate: tuple[int, float] | None = (1, 30.0)

    def __init__(self, settings: Settings) -> None:
        problem = settings.sms_problem()
        if problem:
            raise ValueError(problem)
        self._s = settings
        self._templates = settings.sms_template_map()

    def template(self, notice: Notice) -> SmsTemplate:
        template = self._templates.get(notice.kind)
        if template is None:
            raise SendError(f"no SMS template for {notice.kind}", permanent=True)
        return template

    def endpoint(self) -> tuple[str, str] | None:
        """(scheme, host[:port]) from SMS_ENDPOINT, or None for the SDK's public endpoint."""
        if not self._s.sms_endpoint:
            return None
        url = self._s.sms_endpoint if "://" in self._s.sms_endpoint else f"https://{self._s.sms_endpoint}"
        parts = urlsplit(url)
        return parts.scheme, parts.netloc


class AliyunSmsSender(_SmsSender):
    """dysmsapi SendSms through alibabacloud-dysmsapi20170525 (tea-openapi signs ACS3-HMAC-SHA256)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        from alibabacloud_dysmsapi20170525.client import Client
        from alibabacloud_tea_openapi import utils_models

        secret = settings.sms_access_key_secret
        config = utils_models.Config(
            access_key_id=settings.sms_access_key_id,
            access_key_secret=secret.get_secret_value() if secret else None,
        )
        endpoint = self.endpoint()
        if endpoint:
            config.protocol, config.endpoint = endpoint
        else:
            config.endpoint = "dysmsapi.aliyuncs.com"
        self._client = Client(config)

    def _send_blocking(self, notice: Notice) -> str | None:
        from alibabacloud_dysmsapi20170525 import models
        from alibabacloud_tea_openapi import exceptions
        from darabonba.runtime import RuntimeOptions

        template = self.template(notice)
        request = models.SendSmsRequest(
            phone_numbers=notice.recipient,
            sign_name=self._s.sms_sign_name,
            template_code=template.code,
            template_param=json.dumps(dict(template_params(notice, template)), ensure_ascii=False),
            out_id=idem_key(notice),
        )
        timeout_ms = int(self._s.sms_timeout_seconds * 1000)
        runtime = RuntimeOptions(autoretry=False, read_timeout=timeout_ms, connect_timeout=timeout_ms)
        try:
            response = self._client.send_sms_with_options(request, runtime)
        except exceptions.ThrottlingException as exc:
            raise SendError(f"Aliyun SMS throttled: {exc.code}", retry_after=THROTTLE_RETRY_SECONDS) from exc
        except exceptions.ClientException as exc:
            code = str(exc.code)
            if code in ALIYUN_THROTTLED:
                raise SendError(f"Aliyun SMS throttled: {code}", retry_after=THROTTLE_RETRY_SECONDS) from exc
            raise SendError(f"Aliyun SMS rejected: {code} {exc.message}", permanent=True) from exc
        except exceptions.AlibabaCloudException as exc:
            raise SendError(f"Aliyun SMS server error: {exc.code}") from exc
        except Exception as exc:
            raise SendError(f"Aliyun SMS unavailable: {type(exc).__name__}: {exc}") from exc
        body = response.body
        code = str(body.code) if body else ""
        if code == "OK":
            return str(body.biz_id)
        message = body.message if body else ""
        if code in ALIYUN_THROTTLED:
            raise SendError(f"Aliyun SMS throttled: {code} {message}", retry_after=THROTTLE_RETRY_SECONDS)
        if code in ALIYUN_TRANSIENT:
            raise SendError(f"Aliyun SMS failed for now: {code} {message}")
        raise SendError(f"Aliyun SMS rejected: {code} {message}", permanent=True)

    async def send(self, notice: Notice) -> str | None:
        return await asyncio.to_thread(self._send_blocking, notice)


class TencentSmsSender(_SmsSender):
    """sms 2021-01-11 SendSms through tencentcloud-sdk-python-sms (signed TC3-HMAC-SHA256)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        from tencentcloud.common import credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.sms.v20210111 import sms_client

        secret = settings.sms_access_key_secret
        cred = credential.Credential(settings.sms_access_key_id, secret.get_secret_value() if secret else "")
        http = HttpProfile(reqTimeout=max(1, round(settings.sms_timeout_seconds)))
        endpoint = self.endpoint()
        if endpoint:
            http.scheme, http.endpoint = endpoint
        else:
            http.endpoint = "sms.tencentcloudapi.com"
        self._client = sms_client.SmsClient(cred, settings.sms_region, ClientProfile(httpProfile=http))

    def _send_blocking(self, notice: Notice) -> str | None:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
        from tencentcloud.sms.v20210111 import models

        template = self.template(notice)
        request = models.SendSmsRequest()
        request.PhoneNumberSet = [mainland_e164(notice.recipient)]
        request.SmsSdkAppId = self._s.sms_sdk_app_id
        request.SignName = self._s.sms_sign_name
        request.TemplateId = template.code
        request.TemplateParamSet = [value for _, value in template_params(notice, template)]
        request.SessionContext = idem_key(notice)
        try:
            response = self._client.SendSms(request)
        except TencentCloudSDKException as exc:
            code = str(exc.get_code() or "")
            if code.startswith(TENCENT_THROTTLED_PREFIXES):
                raise SendError(f"Tencent SMS throttled: {code}", retry_after=THROTTLE_RETRY_SECONDS) from exc
            if code.startswith(TENCENT_TRANSIENT_PREFIXES) or code in {"ClientNetworkError", "ServerNetworkError"}:
                raise SendError(f"Tencent SMS failed for now: {code} {exc.get_message()}") from exc
            if code.startswith(("AuthFailure", "UnauthorizedOperation", "FailedOperation", "InvalidParameter")):
                raise SendError(f"Tencent SMS rejected: {code} {exc.get_message()}", permanent=True) from exc
            raise SendError(f"Tencent SMS unavailable: {code} {exc.get_message()}") from exc
        except Exception as exc:
            raise SendError(f"Tencent SMS unavailable: {type(exc).__name__}: {exc}") from exc
        statuses = response.SendStatusSet or []
        if not statuses:
            raise SendError("Tencent SMS returned no send status")
        status = statuses[0]
        code = str(status.Code)
        if code == "Ok":
            return str(status.SerialNo)
        if code.startswith(TENCENT_THROTTLED_PREFIXES):
            raise SendError(f"Tencent SMS throttled: {code} {status.Message}", retry_after=THROTTLE_RETRY_SECONDS)
        if code.startswith(TENCENT_TRANSIENT_PREFIXES):
            raise SendError(f"Tencent SMS failed for now: {code} {status.Message}")
        raise SendError(f"Tencent SMS rejected: {code} {status.Message}", permanent=True)

    async def send(self, notice: Notice) -> str | None:
        return await asyncio.to_thread(self._send_blocking, notice)


def build_sms_sender(settings: Settings) -> AliyunSmsSender | TencentSmsSender | None:
    """The configured SMS sender, or None (with the reason logged loudly) when it cannot run."""
    problem = settings.sms_problem()
    if problem:
        if settings.sms_provider:  # configured but broken: louder than "not set up"
            log.warning("disabled: SMS notices, configuration refused: %s", problem)
        return None
    try:
        if settings.sms_provider == "tencent":
            return TencentSmsSender(settings)
        return AliyunSmsSender(settings)
    except Exception as exc:  # noqa: BLE001 - a bad SDK config must not stop the service
        log.warning("disabled: SMS notices, the %s client could not start: %s", settings.sms_provider, exc)
        return None
