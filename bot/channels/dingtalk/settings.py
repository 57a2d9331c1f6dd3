"""The DingTalk channel's own settings (DINGTALK_*), mixed into the application's settings by
``bot.channels.registry``; read them with ``dingtalk_settings(settings)``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

from bot.settings import Settings, part


class DingTalkSettings(BaseModel):
    # Internal app robot (企业内部应用机器人), HTTP or Stream mode.
    dingtalk_mode: Literal["http", "stream"] = Field("http", validation_alias="DINGTALK_MODE")
    dingtalk_app_key: str | None = Field(None, validation_alias="DINGTALK_APP_KEY")
    dingtalk_app_secret: SecretStr | None = Field(None, validation_alias="DINGTALK_APP_SECRET")
    dingtalk_robot_code: str | None = Field(None, validation_alias="DINGTALK_ROBOT_CODE")
    # Custom group robot (自定义机器人).
    dingtalk_robot_webhook: str | None = Field(None, validation_alias="DINGTALK_ROBOT_WEBHOOK")
    dingtalk_robot_secret: SecretStr | None = Field(None, validation_alias="DINGTALK_ROBOT_SECRET")
    dingtalk_api_base: str = Field("https://api.dingtalk.com", validation_alias="DINGTALK_API_BASE")
    dingtalk_oapi_base: str = Field("https://oapi.dingtalk.com", validation_alias="DINGTALK_OAPI_BASE")

    # DingTalk HTTP mode signs only the timestamp, so a signed pair carries any body while it is
    # fresh. DingTalk delivers within seconds; 300 s leaves room for clock drift (as the platform
    # events' PLATFORM_MAX_SKEW_SECONDS does) against DingTalk's own hour. At most 3600.
    dingtalk_sign_window_seconds: int = Field(300, ge=1, le=3600, validation_alias="DINGTALK_SIGN_WINDOW_SECONDS")

    @field_validator("dingtalk_api_base", "dingtalk_oapi_base")
    @classmethod
    def _dingtalk_strip_slash(cls, value: str) -> str:
        return value.rstrip("/")


def dingtalk_settings(settings: Settings) -> DingTalkSettings:
    return part(settings, DingTalkSettings)
