"""The Feishu / Lark channel's own settings (FEISHU_*), mixed into the application's settings by
``bot.channels.registry``; read them with ``feishu_settings(settings)``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

from bot.settings import Settings, part


class FeishuSettings(BaseModel):
    # A self-built app (企业自建应用) with the bot ability (机器人).
    feishu_app_id: str | None = Field(None, validation_alias="FEISHU_APP_ID")
    feishu_app_secret: SecretStr | None = Field(None, validation_alias="FEISHU_APP_SECRET")
    # 事件与回调 → 加密策略: Verification Token and Encrypt Key (HTTP mode checks both).
    feishu_verification_token: SecretStr | None = Field(None, validation_alias="FEISHU_VERIFICATION_TOKEN")
    feishu_encrypt_key: SecretStr | None = Field(None, validation_alias="FEISHU_ENCRYPT_KEY")
    # http: Feishu POSTs to /feishu/callback; ws: a long connection we open (no public address).
    feishu_mode: Literal["http", "ws"] = Field("http", validation_alias="FEISHU_MODE")
    # Lark (international) users set https://open.larksuite.com.
    feishu_api_base: str = Field("https://open.feishu.cn", validation_alias="FEISHU_API_BASE")
    # A group chat (chat_id oc_…, the bot a member) that gets the managers' daily summary.
    feishu_summary_chat_id: str | None = Field(None, validation_alias="FEISHU_SUMMARY_CHAT_ID")
    # 飞书招聘: write exits back to the candidate's application (the app needs the Hire scopes).
    feishu_hire_enabled: bool = Field(False, validation_alias="FEISHU_HIRE_ENABLED")

    @field_validator("feishu_api_base")
    @classmethod
    def _feishu_strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("feishu_app_id", "feishu_summary_chat_id")
    @classmethod
    def _feishu_blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None


def feishu_settings(settings: Settings) -> FeishuSettings:
    return part(settings, FeishuSettings)
