"""Logs an admin can read: local timestamps with their offset, bounded records, an opt-in access log.

``configure_logging`` is called by the command line; the access logger is handed to aiohttp's
``run_app`` when ``BOT_ACCESS_LOG`` is on.

The access log leaves out the probes (``PROBES``: ``/healthz``, ``/readyz``, ``/metrics``) that
answer below 400: a load balancer or Prometheus asks every few seconds, and those lines would bury
the rest. A failing probe is still logged.

``BOT_LOG_FORMAT=json`` writes one JSON object per line instead (``JsonFormatter``), its ``time`` in
ISO 8601 with the zone's offset (``2026-03-10T10:00:00.250+08:00``), each with the
fields bound by ``log_context`` for the work in progress: the chat message (``message_id``), the
outbox row (``notice_id``), the interview (``interview_id``), the platform event (``event_id``).
They are contextvars, so they follow a request's work into the tasks it starts and never leak
into another request's lines.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from aiohttp import http_exceptions, web
from aiohttp.abc import AbstractAccessLogger

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A record's message and its traceback are cut to these many characters (aiohttp once logged
# a whole 128 KB request line per malformed request).
MAX_MESSAGE_CHARS = 2000
MAX_LINE_CHARS = 500
MAX_TRACEBACK_CHARS = 8000
# Paths polled by health checks and Prometheus: not access-logged while they succeed.
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


_CONTEXT: ContextVar[dict[str, str]] = ContextVar("bot_log_context", default={})  # noqa: B039 - never mutated


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add ``fields`` (None values skipped) to every log line written inside the block."""
    token = _CONTEXT.set({**_CONTEXT.get(), **{k: str(v) for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def bind(**fields: object) -> None:
    """Add ``fields`` for the rest of the enclosing ``log_context`` block (learnt on the way, e.g.
    the interview of an outbox row once it is loaded)."""
    _CONTEXT.set({**_CONTEXT.get(), **{k: str(v) for k, v in fields.items() if v is not None}})


def context_fields() -> dict[str, str]:
    return dict(_CONTEXT.get())


def cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters not logged]"


class AdminFormatter(logging.Formatter):
    """``2026-03-10 10:00:00.123+0800`` in the configured zone; long messages and tracebacks cut."""

    def __init__(self, tz: ZoneInfo) -> None:
        super().__init__(FORMAT)
        self.tz = tz

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        when = datetime.fromtimestamp(record.created, self.tz)
        return f"{when:%Y-%m-%d %H:%M:%S}.{int(record.msecs):03d}{when:%z}"

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = cap(record.message, MAX_MESSAGE_CHARS)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        text = super().formatException(ei)
        lines = "\n".join(cap(line, MAX_LINE_CHARS) for line in text.splitlines())
        return cap(lines, MAX_TRACEBACK_CHARS)


class JsonFormatter(AdminFormatter):
    """One JSON object per line: time (ISO 8601, local, with offset), level, logger, message, the
    bound context fields, and the traceback (cut like the text format's) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = cap(record.getMessage(), MAX_MESSAGE_CHARS)
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, self.tz).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.message,
            **context_fields(),
        }
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class BadRequestFilter(logging.Filter):
    """aiohttp.server logs a malformed request at ERROR with a traceback and the request bytes
    in the exception text. It is the client's fault: one short WARNING line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, http_exceptions.HttpProcessingError):
            what = " ".join(f"{type(exc).__name__}: {exc.message}".split())
            record.msg, record.args = f"{record.getMessage()}: {cap(what, 200)}", None
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class PathAccessLogger(AbstractAccessLogger):
    """One line per request: client, method, path, status, bytes, seconds. Never the query string
    (WeCom and DingTalk put signatures there) and never a header."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if request.path in PROBES and response.status < 400:
            return
        self.logger.info(
            '%s "%s %s" %s %s %.3fs',
            request.remote or "-",
            request.method,
            request.path,
            response.status,
            response.body_length,
            time,
        )


def access_logger() -> logging.Logger:
    return logging.getLogger("bot.access")


def configure_logging(
    tz: ZoneInfo, *, level: int = logging.INFO, stream: TextIO | None = None, json_lines: bool = False
) -> None:
    """Root handler on stderr with the admin format (or JSON lines); replaces any earlier configuration."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(tz) if json_lines else AdminFormatter(tz))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, BadRequestFilter) for f in server.filters):
        server.addFilter(BadRequestFilter())
