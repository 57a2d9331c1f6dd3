"""The service's own settings (core: database, notices, schedule, SMS, SMTP, …).

Each chat channel carries its own settings model (``bot/channels/<name>/settings.py``);
``bot.channels.registry.AppSettings`` mixes them into these, and ``registry.load_settings`` reads
them all from the environment (never at import).
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, TypeAdapter, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.delivery import CANDIDATE_CHANNELS, CANDIDATE_NOTICE_KINDS, CandidateChannel

log = logging.getLogger(__name__)


# Candidate notice kinds (each needs an SMS template mapping before SMS is enabled) and channels.
NOTICE_CHANNELS = tuple(c.value for c in CANDIDATE_CHANNELS)


class SmsTemplate(BaseModel):
    """One approved provider template: its code and the notice context variables filling it, in order."""

    code: str = Field(min_length=1)
    params: list[str] = Field(default_factory=list)


_SMS_TEMPLATES = TypeAdapter(dict[str, SmsTemplate])


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    host: str = Field("127.0.0.1", validation_alias="BOT_HOST")
    port: int = Field(8080, ge=0, le=65535, validation_alias="BOT_PORT")
    database_url: str = Field("sqlite+aiosqlite:///data/bot.db", validation_alias="BOT_DATABASE_URL")
    timezone: str = Field("Asia/Shanghai", validation_alias="BOT_TIMEZONE")
    admin_token: SecretStr | None = Field(None, validation_alias="BOT_ADMIN_TOKEN")
    max_body_bytes: int = Field(256 * 1024, ge=1024, validation_alias="BOT_MAX_BODY_BYTES")
    # This replica's stable name (claims are "<instance>/<boot id>"); default "<hostname>:<port>".
    instance_id: str | None = Field(None, min_length=1, max_length=100, validation_alias="BOT_INSTANCE_ID")
    # How long a replica holds a lease without renewing it (renewed every third of that): a long
    # connection's, and each process's own replica lease (bot.services.leases.heartbeat). How soon
    # another replica takes over a dead one's connection and its claimed work.
    lease_seconds: float = Field(30.0, ge=3, le=600, validation_alias="BOT_LEASE_SECONDS")

    platform_webhook_secret: SecretStr | None = Field(None, validation_alias="PLATFORM_WEBHOOK_SECRET")
    platform_api_base: str | None = Field(None, validation_alias="PLATFORM_API_BASE")
    platform_timeout_seconds: float = Field(10.0, gt=0, validation_alias="PLATFORM_TIMEOUT_SECONDS")
    signature_max_skew_seconds: int = Field(300, ge=1, validation_alias="PLATFORM_MAX_SKEW_SECONDS")
    # Platform events stored and not yet applied, at most; above it the platform gets 503 + Retry-After.
    event_backlog_limit: int = Field(20_000, ge=1, validation_alias="BOT_EVENT_BACKLOG_LIMIT")

    # Outbound events to the company's systems (bot/services/outbound.py): endpoints from here, each
    # signed with BOT_WEBHOOK_SECRET, beside the ones the console's 系统 page manages with their own.
    webhook_urls: str = Field("", validation_alias="BOT_WEBHOOK_URLS")
    webhook_secret: SecretStr | None = Field(None, validation_alias="BOT_WEBHOOK_SECRET")
    webhook_include_contacts: bool = Field(False, validation_alias="BOT_WEBHOOK_INCLUDE_CONTACTS")
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=120, validation_alias="BOT_WEBHOOK_TIMEOUT_SECONDS")
    # Tries of one event to one endpoint before it is a dead letter (retryable in the console's 通知).
    webhook_max_attempts: int = Field(12, ge=1, validation_alias="BOT_WEBHOOK_MAX_ATTEMPTS")

    smtp_host: str | None = Field(None, validation_alias="SMTP_HOST")
    smtp_port: int = Field(25, validation_alias="SMTP_PORT")
    smtp_username: str | None = Field(None, validation_alias="SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(None, validation_alias="SMTP_PASSWORD")
    smtp_from: str | None = Field(None, validation_alias="SMTP_FROM")
    smtp_starttls: bool = Field(False, validation_alias="SMTP_STARTTLS")
    smtp_timeout_seconds: float = Field(15.0, gt=0, validation_alias="SMTP_TIMEOUT_SECONDS")

    outbox_poll_seconds: float = Field(2.0, gt=0, validation_alias="BOT_OUTBOX_POLL_SECONDS")
    outbox_max_attempts: int = Field(8, ge=1, validation_alias="BOT_OUTBOX_MAX_ATTEMPTS")
    outbox_base_delay_seconds: float = Field(5.0, gt=0, validation_alias="BOT_OUTBOX_BASE_DELAY_SECONDS")
    outbox_max_delay_seconds: float = Field(3600.0, gt=0, validation_alias="BOT_OUTBOX_MAX_DELAY_SECONDS")

    company_name: str = Field("招聘团队", validation_alias="BOT_COMPANY_NAME")
    template_dir: str | None = Field(None, validation_alias="BOT_TEMPLATE_DIR")

    confirm_ttl_seconds: int = Field(300, ge=10, validation_alias="BOT_CONFIRM_TTL_SECONDS")
    # Candidates' 求助 with wants_exit: "self" ends it at once (cloud style), "confirm" asks the
    # HR owner (default), "deny" tells the candidate to contact HR and alerts HR (on-premise style).
    candidate_exit_policy: Literal["self", "confirm", "deny"] = Field(
        "confirm", validation_alias="BOT_CANDIDATE_EXIT_POLICY"
    )
    # An unanswered help request reminds the HR owner after this long, then goes to managers after twice it.
    help_remind_seconds: int = Field(600, ge=30, validation_alias="BOT_HELP_REMIND_SECONDS")

    # Scheduled work (issue 6): sweeps over due rows, idle timeouts, the managers' daily summary.
    sweep_interval_seconds: float = Field(5.0, gt=0, validation_alias="BOT_SWEEP_INTERVAL_SECONDS")
    idle_timeout_seconds: int = Field(600, ge=0, validation_alias="BOT_IDLE_TIMEOUT_SECONDS")  # 0: off
    idle_warning_fraction: float | None = Field(None, gt=0, lt=1, validation_alias="BOT_IDLE_WARNING_FRACTION")
    reminder_before_seconds: int = Field(3600, ge=60, validation_alias="BOT_REMINDER_BEFORE_SECONDS")
    reminder_after_start_seconds: int = Field(1800, ge=60, validation_alias="BOT_REMINDER_AFTER_START_SECONDS")
    daily_summary_at: str = Field(
        "18:00", pattern=r"^([01]?\d|2[0-3]):[0-5]\d$", validation_alias="BOT_DAILY_SUMMARY_AT"
    )
    summary_spike_factor: float = Field(2.0, gt=1, validation_alias="BOT_SUMMARY_SPIKE_FACTOR")
    summary_stuck_after_seconds: int = Field(7200, ge=60, validation_alias="BOT_SUMMARY_STUCK_AFTER_SECONDS")
    # Where this service is reachable from outside (DingTalk fetches chart images from it).
    public_base_url: str | None = Field(None, validation_alias="BOT_PUBLIC_BASE_URL")
    chart_font: str | None = Field(None, validation_alias="BOT_CHART_FONT")  # a CJK font file for chart labels
    # Web console (/console): how long a browser stays signed in after opening a login link.
    console_session_hours: int = Field(12, ge=1, le=24 * 30, validation_alias="BOT_CONSOLE_SESSION_HOURS")
    # How often the 进行中 page reloads itself (not while a form on it is open); 0 turns it off.
    console_refresh_seconds: int = Field(30, ge=0, le=3600, validation_alias="BOT_CONSOLE_REFRESH_SECONDS")
    # Login links refused (unknown, used, expired): after this many from one address within the
    # window, that address gets 429 with Retry-After until its oldest failure leaves the window.
    console_login_failures: int = Field(20, ge=1, le=10_000, validation_alias="BOT_CONSOLE_LOGIN_FAILURES")
    console_login_window_seconds: int = Field(
        300, ge=1, le=24 * 3600, validation_alias="BOT_CONSOLE_LOGIN_WINDOW_SECONDS"
    )
    # Reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For names the
    # client; empty: the peer address is the client and X-Forwarded-For is never read.
    trusted_proxies: str = Field("", validation_alias="BOT_TRUSTED_PROXIES")

    # Candidate notices (issue 7): channel order, filtered by what the candidate has and what is enabled.
    notice_plan: str = Field("kf,sms,email", validation_alias="BOT_NOTICE_PLAN")

    # SMS through Aliyun (dysmsapi SendSms) or Tencent Cloud (sms SendSms 2021-01-11).
    sms_provider: Literal["aliyun", "tencent"] | None = Field(None, validation_alias="SMS_PROVIDER")
    sms_access_key_id: str | None = Field(None, validation_alias="SMS_ACCESS_KEY_ID")
    sms_access_key_secret: SecretStr | None = Field(None, validation_alias="SMS_ACCESS_KEY_SECRET")
    sms_sign_name: str | None = Field(None, validation_alias="SMS_SIGN_NAME")
    sms_sdk_app_id: str | None = Field(None, validation_alias="SMS_SDK_APP_ID")  # Tencent only
    sms_region: str = Field("ap-guangzhou", validation_alias="SMS_REGION")  # Tencent only
    # "https://host[:port]" or "http://127.0.0.1:port" (tests, private clouds); None: the SDK's default.
    sms_endpoint: str | None = Field(None, validation_alias="SMS_ENDPOINT")
    sms_timeout_seconds: float = Field(10.0, gt=0, validation_alias="SMS_TIMEOUT_SECONDS")
    # JSON: notice kind -> {"code": "SMS_123", "params": ["candidate_name", ...]} (approved provider templates).
    # Kept as text and parsed in sms_problem(): bad JSON disables SMS loudly instead of stopping the service.
    sms_templates: str = Field("{}", validation_alias="SMS_TEMPLATES")

    # How candidate notices tell the candidate to reach the HR owner (always by name):
    # none (name only), mobile, email or both of the HR's registered contacts.
    notice_hr_contact: Literal["none", "mobile", "email", "both"] = Field(
        "none", validation_alias="BOT_NOTICE_HR_CONTACT"
    )
    # A company hotline or mailbox shown to candidates instead of the HR's own contacts, e.g. "400-800-1234".
    company_contact: str | None = Field(None, validation_alias="BOT_COMPANY_CONTACT")

    # Logs (issue 10): one line per HTTP request (path only, never the query string) when on.
    access_log: bool = Field(False, validation_alias="BOT_ACCESS_LOG")
    # Issue 15: "json" writes one JSON object per log line (with the message / interview being worked on).
    log_format: Literal["text", "json"] = Field("text", validation_alias="BOT_LOG_FORMAT")
    # Bearer token of GET /metrics; unset: the admin token is accepted there.
    metrics_token: SecretStr | None = Field(None, validation_alias="BOT_METRICS_TOKEN")

    # Optional language model (bot/language/llm.py): an OpenAI-compatible Chat Completions endpoint
    # that may only propose an intent for a message the rules cannot read. Off unless all three are set.
    llm_base_url: str | None = Field(None, validation_alias="BOT_LLM_BASE_URL")
    llm_model: str | None = Field(None, validation_alias="BOT_LLM_MODEL")
    llm_api_key: SecretStr | None = Field(None, validation_alias="BOT_LLM_API_KEY")
    llm_timeout_seconds: float = Field(5.0, gt=0, le=120, validation_alias="BOT_LLM_TIMEOUT_SECONDS")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @field_validator(
        "platform_api_base",
        "sms_endpoint",
        "public_base_url",
        "llm_base_url",
    )
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        parts = [p.strip() for p in value.split(",") if p.strip()]
        for part in parts:
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError as exc:
                raise ValueError(f"BOT_TRUSTED_PROXIES: {part!r} is not an address or network") from exc
        return ",".join(parts)

    @property
    def proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(p, strict=False) for p in self.trusted_proxies.split(",") if p]

    @field_validator("notice_plan")
    @classmethod
    def _known_channels(cls, value: str) -> str:
        channels = [c.strip() for c in value.split(",") if c.strip()]
        unknown = [c for c in channels if c not in NOTICE_CHANNELS]
        if unknown or not channels:
            raise ValueError(f"BOT_NOTICE_PLAN: unknown channels {unknown}, known: {', '.join(NOTICE_CHANNELS)}")
        return ",".join(channels)

    @field_validator("webhook_urls")
    @classmethod
    def _webhook_urls(cls, value: str) -> str:
        urls = [u.strip() for u in value.split(",") if u.strip()]
        bad = [u for u in urls if not u.startswith(("http://", "https://")) or len(u) > 500]
        if bad:
            raise ValueError(f"BOT_WEBHOOK_URLS: not an http(s) URL of at most 500 characters: {bad}")
        return ",".join(urls)

    @model_validator(mode="after")
    def _webhook_secret_set(self) -> Settings:
        if self.webhook_urls and not (self.webhook_secret and self.webhook_secret.get_secret_value()):
            raise ValueError("BOT_WEBHOOK_URLS is set but BOT_WEBHOOK_SECRET is not: every event is signed")
        return self

    @property
    def webhook_url_list(self) -> list[str]:
        return [u for u in self.webhook_urls.split(",") if u]

    @property
    def notice_channels(self) -> list[str]:
        return self.notice_plan.split(",")

    def sms_problem(self) -> str | None:
        """Why the SMS channel cannot run (None when it can): missing secrets or unmapped notice kinds."""
        if not self.sms_provider:
            return "SMS_PROVIDER is not set"
        missing = [
            name
            for name, value in (
                ("SMS_ACCESS_KEY_ID", self.sms_access_key_id),
                ("SMS_ACCESS_KEY_SECRET", self.sms_access_key_secret and self.sms_access_key_secret.get_secret_value()),
                ("SMS_SIGN_NAME", self.sms_sign_name),
                ("SMS_SDK_APP_ID", self.sms_sdk_app_id if self.sms_provider == "tencent" else "n/a"),
            )
            if not value
        ]
        if missing:
            return f"{', '.join(missing)} not set"
        try:
            templates = self.sms_template_map()
        except ValueError as exc:
            return f"SMS_TEMPLATES is not valid: {exc}"
        unmapped = [kind for kind in CANDIDATE_NOTICE_KINDS if kind not in templates]
        if unmapped:
            return f"SMS_TEMPLATES has no template for notice kinds: {', '.join(unmapped)}"
        return None

    def sms_template_map(self) -> dict[str, SmsTemplate]:
        """SMS_TEMPLATES parsed; ValueError (pydantic's ValidationError is one) when it is malformed."""
        return _SMS_TEMPLATES.validate_json(self.sms_templates or "{}")

    @property
    def sms_enabled(self) -> bool:
        return self.sms_problem() is None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def daily_summary_time(self) -> tuple[int, int]:
        hour, minute = self.daily_summary_at.split(":")
        return int(hour), int(minute)

    @property
    def llm_enabled(self) -> bool:
        """The language model may be asked for proposals: its endpoint, model and key are all set."""
        key = self.llm_api_key.get_secret_value() if self.llm_api_key is not None else ""
        return bool(self.llm_base_url and self.llm_model and key)

    @property
    def smtp_enabled(self) -> bool:
        return bool(self.smtp_host and self.smtp_from)

    def feature_status(self) -> list[tuple[str, str | None]]:
        """The service's own switchable features with None when on, else why off; the start-up
        summary adds each chat channel's (``bot.channels.registry.feature_status``)."""

        def unset(*pairs: tuple[str, object]) -> str | None:
            missing = [name for name, value in pairs if not value]
            return f"{', '.join(missing)} not set" if missing else None

        def secret(value: SecretStr | None) -> str:
            return value.get_secret_value() if value is not None else ""

        platform_secret = unset(("PLATFORM_WEBHOOK_SECRET", secret(self.platform_webhook_secret)))
        return [
            ("admin API", unset(("BOT_ADMIN_TOKEN", secret(self.admin_token)))),
            ("platform events API", platform_secret),
            (
                "platform calls",
                unset(("PLATFORM_API_BASE", self.platform_api_base)) or platform_secret,
            ),
            (
                "email notices",
                None if self.smtp_enabled else "SMTP_HOST or SMTP_FROM not set; other channels or an HR to-do instead",
            ),
            ("SMS notices", self.sms_problem()),
        ]

    def candidate_channels(self) -> set[str]:
        """The notice channels of this service's own settings that can reach candidates (SMS, email);
        chat channels add theirs (``bot.delivery.Reach.candidate_chats``)."""
        usable = ((CandidateChannel.sms, self.sms_enabled), (CandidateChannel.email, self.smtp_enabled))
        return {c.value for c, on in usable if on}


M = TypeVar("M", bound=BaseModel)


def part(settings: Settings, model: type[M]) -> M:
    """The settings of one part (a channel's ``settings_model``) from the application's settings.

    The application's settings class is ``Settings`` with every channel's model mixed in
    (``bot.channels.registry.AppSettings``; load them with ``registry.load_settings``).
    """
    if not isinstance(settings, model):
        raise TypeError(f"settings lack {model.__name__}: load them with bot.channels.registry.load_settings")
    return settings
