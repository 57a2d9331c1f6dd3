"""The Channel protocol: a chat platform connection (neutral types live in ``bot.chat``)."""

from __future__ import annotations

from typing import Protocol


class Channel(Protocol):
    """A chat platform connection, started and stopped with the application."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
