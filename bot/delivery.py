"""The delivery contract between services and channels: what a channel can reach, as plain data.

Services never import a channel. The registry (``bot.channels.registry``) reads each channel's
settings and hands the services, through ``Core``, what the channels can do:

- ``staff_channels``: outbox channels that reach colleagues by their platform user id;
- ``candidate_chats``: chat channels that reach candidates (a channel of BOT_NOTICE_PLAN);
- ``group_posters``: group robots that take posts (the managers' daily summary).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from storage.models import Notice


@dataclass(frozen=True, slots=True)
class GroupPost:
    """One post to a group robot: markdown text, and a PNG for robots that take images."""

    kind: str
    now: datetime
    title: str
    markdown: str
    dedupe_key: str
    image: bytes | None = None


@dataclass(frozen=True, slots=True)
class GroupPoster:
    """A configured group robot. ``build`` turns a post into outbox rows for its sender."""

    channel: str  # the outbox channel, also the recipient key "robot:<channel>" of the summary
    # True: a chart goes as an image message (and the markdown carries no link to it).
    takes_images: bool
    build: Callable[[GroupPost], list[Notice]]


@dataclass(frozen=True, slots=True)
class Reach:
    """What the configured channels can reach (see the module docstring)."""

    staff_channels: frozenset[str] = frozenset()
    candidate_chats: frozenset[str] = frozenset()
    group_posters: tuple[GroupPoster, ...] = ()
