"""Email notices over SMTP (aiosmtplib), plain text with an HTML alternative.

Every message carries the headers RFC 5322 requires (``Date`` from the service's clock, ``From``)
and a ``Message-ID`` stable per notice, so a retried message can be recognised as the same one."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import aiosmtplib

from bot.chat.masking import mask_contacts
from bot.clock import Clock
from bot.delivery import SendProblem
from bot.outbox import SendError
from bot.settings import Settings
from storage.models import Notice

log = logging.getLogger(__name__)

# SMTP reply codes that will not get better by retrying the same message.
PERMANENT_CODES = range(500, 600)


class EmailSender:
    channel = "email"
    rate: tuple[int, float] | None = None

    def __init__(self, settings: Settings, *, clock: Clock) -> None:
        if not settings.smtp_enabled:
            raise ValueError("SMTP is not configured")
        self._s = settings
        self._clock = clock

    def build(self, notice: Notice) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self._s.smtp_from
        msg["To"] = notice.recipient
        msg["Subject"] = notice.subject or "通知"
        # When this message is sent, in the service's time zone (RFC 5322 requires a Date).
        msg["Date"] = format_datetime(self._clock.now().astimezone(self._s.tz))
        domain = (self._s.smtp_from or "bot.local").rsplit("@", 1)[-1].strip(">")
        # Stable id per notice: a retried message can be recognised as the same one.
        msg["Message-ID"] = make_msgid(idstring=f"notice-{notice.id}", domain=domain)
        msg.set_content(notice.body)
        if notice.html_body:
            msg.add_alternative(notice.html_body, subtype="html")
        return msg

    async def send(self, notice: Notice) -> str | None:
        msg = self.build(notice)
        s = self._s
        try:
            await aiosmtplib.send(
                msg,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                start_tls=s.smtp_starttls,
                use_tls=False,
                timeout=s.smtp_timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            # The refusal names the address; errors are logged, and logs never hold a candidate's contact.
            answers = "; ".join(f"{r.code} {mask_contacts(r.message, [r.recipient])}" for r in exc.recipients)
            raise SendError(
                f"recipient refused: {answers}", permanent=True, problem=SendProblem.recipient_refused
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            message = mask_contacts(exc.message, [notice.recipient])
            raise SendError(f"SMTP {exc.code}: {message}", permanent=exc.code in PERMANENT_CODES) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SendError(f"SMTP unavailable: {type(exc).__name__}: {exc}") from exc
        return str(msg["Message-ID"])
