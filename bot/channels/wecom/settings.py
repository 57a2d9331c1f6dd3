"""The WeCom channel's own settings (WECOM_*), mixed into the application's settings by
``bot.channels.registry``; read them with ``wecom_settings(settings)``."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator

from bot.settings import Settings, part


class WeComSettings(BaseModel):
    # Self-built app (自建应用): its callback, app messages to staff, 微信客服 through it.
    wecom_corp_id: str | None = Field(None, validation_alias="WECOM_CORP_ID")
    wecom_agent_id: int | None = Field(None, validation_alias="WECOM_AGENT_ID")
    wecom_secret: SecretStr | None = Field(None, validation_alias="WECOM_SECRET")
    wecom_token: SecretStr | None = Field(None, validation_alias="WECOM_TOKEN")
    wecom_aes_key: SecretStr | None = Field(None, validation_alias="WECOM_AES_KEY")
    # AI bot (智能机器人) in URL-callback mode.
    wecom_bot_token: SecretStr | None = Field(None, validation_alias="WECOM_BOT_TOKEN")
    wecom_bot_aes_key: SecretStr | None = Field(None, validation_alias="WECOM_BOT_AES_KEY")
    # AI bot in long-connection mode (API 模式 → 长连接): no public URL needed.
    wecom_bot_id: str | None = Field(None, validation_alias="WECOM_BOT_ID")
    wecom_bot_secret: SecretStr | None = Field(None, validation_alias="WECOM_BOT_SECRET")
    wecom_bot_ws_url: str = Field("wss://openws.work.weixin.qq.com", validation_alias="WECOM_BOT_WS_URL")
    # A group chat (chatid) the long-connection bot posts the managers' daily summary to.
    wecom_bot_summary_chatid: str | None = Field(None, validation_alias="WECOM_BOT_SUMMARY_CHATID")
    # Group robot (群机器人) webhook key.
    wecom_robot_key: SecretStr | None = Field(None, validation_alias="WECOM_ROBOT_KEY")
    wecom_api_base: str = Field("https://qyapi.weixin.qq.com", validation_alias="WECOM_API_BASE")
    # 微信客服 through the self-built app (its secret must be granted the customer-service API).
    wecom_kf_enabled: bool = Field(False, validation_alias="WECOM_KF_ENABLED")
    wecom_kf_link: str | None = Field(None, validation_alias="WECOM_KF_LINK")  # https://work.weixin.qq.com/kfid/...

    @field_validator("wecom_api_base")
    @classmethod
    def _wecom_strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("wecom_bot_ws_url")
    @classmethod
    def _wecom_ws_url(cls, value: str) -> str:
        if not value.startswith(("wss://", "ws://")):
            raise ValueError("WECOM_BOT_WS_URL must start with wss:// (or ws:// for a local test server)")
        return value


def wecom_settings(settings: Settings) -> WeComSettings:
    return part(settings, WeComSettings)
