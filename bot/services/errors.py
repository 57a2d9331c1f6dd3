"""The base of every refusal a service gives: a Chinese message for people, a code and an HTTP status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.services.context import Core


def refusal(core: Core, error: str, **context: Any) -> str:
    """The Chinese text of a refusal (``templates/services/refusals.txt.j2``, branch ``error``)."""
    return core.templates.render("services/refusals.txt.j2", error=error, **context)


class ServiceError(Exception):
    """Why a service did not do what was asked; ``message`` is Chinese for people."""

    code = "failed"
    http_status = 409

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra
