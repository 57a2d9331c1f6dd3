"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import email
import socket
import time
from email.message import EmailMessage
from email.policy import default
from typing import Any, ClassVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: int | None = None  # reply code to refuse RCPT with

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.refuse:
            return f"{self.refuse} mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.original_content, policy=default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        return "250 Message accepted for delivery"


class _CountingSMTP(SMTP):
    """Counts open sessions so the server is stopped only after the last one has closed."""

    open_sessions: ClassVar[dict[int, int]] = {}

    def connection_made(self, transport: Any) -> None:
        _CountingSMTP.open_sessions[self._port] = _CountingSMTP.open_sessions.get(self._port, 0) + 1
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        _CountingSMTP.open_sessions[self._port] -= 1

    _port = 0


class _Controller(Controller):
    def factory(self) -> SMTP:
        smtp = _CountingSMTP(self.handler, **self.SMTP_kwargs)
        smtp._port = self.port
        return smtp


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.inbox = _Inbox()
        self._controller = _Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[EmailMessage]:
        return self.inbox.messages

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        # A client that just got "221 Bye" may still be closing: let its session end first, or
        # stopping the server's loop leaves that socket to the garbage collector (ResourceWarning).
        deadline = time.monotonic() + 2.0
        while _CountingSMTP.open_sessions.get(self.port, 0) > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        self._controller.stop()
