"""The base of every refusal a service gives: a Chinese message for people, a code and an HTTP status."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Why a service did not do what was asked; ``message`` is Chinese for people."""

    code = "failed"
    http_status = 409

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra
