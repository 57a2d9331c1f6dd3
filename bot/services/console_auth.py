"""Web console sign-in without passwords: identity comes from the chat platform.

- ``issue_link`` (``python -m bot console-link``, chat 后台): a one-time token for a registered
  person, valid ``LINK_VALID``; only its SHA-256 is stored.
- ``sign_in``: spends the token (one conditional update: two clicks or two replicas, one session)
  and opens a server-side session valid BOT_CONSOLE_SESSION_HOURS; the browser keeps only the
  session id (cookie), the database its SHA-256 and its CSRF token, so replicas share sessions.
- ``session_user``: the signed-in person for a cookie, or None (expired, logged out, or the
  person was removed since).
- ``sign_out``: ends the session.
Every sign-in and refusal of a known link is audited with source ``console``; an address the
console holds off after too many refused links once per hold (``note_throttled``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from bot.services import people
from bot.services.context import Core
from bot.services.errors import ServiceError, refusal
from bot.settings import Settings
from storage import repo
from storage.models import Person, Role

__all__ = [
    "LINK_VALID",
    "ConsoleUser",
    "LinkRefused",
    "Person",
    "Role",
    "check_link",
    "issue_link",
    "link_url",
    "note_throttled",
    "purge",
    "session_user",
    "sign_in",
    "sign_out",
]

LINK_VALID = timedelta(minutes=10)
LOGIN_PATH = "/console/login"
STATS_PATH = "/console/stats"  # linked from the daily summary


class LinkRefused(ServiceError):
    """A login link that gives no session (unknown, used, expired, or its person is gone)."""

    code = "link_refused"
    http_status = 403


class LinkUnknown(LinkRefused):
    code = "link_unknown"
    http_status = 404


class LinkUsed(LinkRefused):
    code = "link_used"
    http_status = 410


class LinkExpired(LinkRefused):
    code = "link_expired"
    http_status = 410


class NotRegistered(ServiceError):
    code = "not_registered"
    http_status = 404


@dataclass(frozen=True)
class ConsoleUser:
    person: Person
    csrf: str

    @property
    def key(self) -> str:
        return self.person.key

    @property
    def is_admin(self) -> bool:
        return self.person.role == Role.admin.value

    @property
    def scope(self) -> str | None:
        """The ``hr_key`` to limit interview lists by (None: all), as chat's role rules."""
        return people.scope_key(self.person)

    @property
    def is_manager(self) -> bool:
        """Managers and admins: 统计, as chat's 统计 command allows (``people.MANAGERS``)."""
        return self.person.role in people.MANAGERS

    @property
    def sees_all(self) -> bool:
        """Managers and admins see and act on every interview; HR on their own and shared ones."""
        return self.scope is None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def service_url(settings: Settings) -> str:
    """BOT_PUBLIC_BASE_URL when set, else the address the service listens on (a wildcard host
    is reached on this machine's loopback)."""
    if settings.public_base_url:
        return settings.public_base_url
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"  # noqa: S104
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def base_url(core: Core) -> str:
    return service_url(core.settings)


def local_only(settings: Settings) -> bool:
    """Links are built on the listening address (BOT_PUBLIC_BASE_URL unset): they open only on
    this machine (or its network), not on a colleague's phone."""
    return not settings.public_base_url


def link_url(core: Core, token: str) -> str:
    return f"{base_url(core)}{LOGIN_PATH}?token={token}"


def secure_cookies(core: Core) -> bool:
    return base_url(core).startswith("https://")


async def issue_link(core: Core, *, platform: str, user_id: str, chat: str | None = None) -> str:
    """A new one-time login token for the registered person ``platform:user_id`` (committed)."""
    now = core.clock.now()
    token = secrets.token_urlsafe(32)
    async with core.sessions() as session:
        person = await repo.get_person(session, platform=platform, user_id=user_id)
        if person is None:
            raise NotRegistered(refusal(core, "console_not_registered", person=f"{platform}:{user_id}"))
        repo.add_console_login(
            session, token_hash=_hash(token), person_key=person.key, now=now, expires_at=now + LINK_VALID
        )
        repo.audit(session, at=now, actor=person.key, action="console.link", chat=chat, detail={"source": "console"})
        await session.commit()
    return token


async def check_link(core: Core, *, token: str) -> LinkRefused | None:
    """Why ``token`` would give no session (without spending it), or None if it still would."""
    if not token or len(token) > 200:
        return LinkUnknown(refusal(core, "console_link_unknown"))
    now = core.clock.now()
    async with core.sessions() as session:
        login = await repo.get_console_login(session, token_hash=_hash(token))
    if login is None:
        return LinkUnknown(refusal(core, "console_link_unknown"))
    if login.used_at is not None:
        return LinkUsed(refusal(core, "console_link_used"))
    if login.expires_at <= now:
        return LinkExpired(refusal(core, "console_link_expired"))
    return None


async def sign_in(core: Core, *, token: str) -> tuple[str, ConsoleUser]:
    """Spend ``token`` and open a session: (session id for the cookie, the user). Else LinkRefused."""
    now = core.clock.now()
    if not token or len(token) > 200:
        raise LinkUnknown(refusal(core, "console_link_unknown"))
    digest = _hash(token)
    async with core.sessions() as session:
        login = await repo.get_console_login(session, token_hash=digest)
        if login is None:
            raise LinkUnknown(refusal(core, "console_link_unknown"))
        if not await repo.spend_console_login(session, token_hash=digest, now=now):
            await session.rollback()
            login = await repo.get_console_login(session, token_hash=digest)
            assert login is not None
            refused: LinkRefused = (
                LinkUsed(refusal(core, "console_link_used"))
                if login.used_at
                else LinkExpired(refusal(core, "console_link_expired"))
            )
            repo.audit(
                session,
                at=now,
                actor=login.person_key,
                action="console.login_refused",
                detail={"source": "console", "why": refused.code},
            )
            await session.commit()
            raise refused
        platform, _, user_id = login.person_key.partition(":")
        person = await repo.get_person(session, platform=platform, user_id=user_id)
        if person is None:
            await session.commit()  # the link is spent either way
            raise LinkRefused(refusal(core, "console_not_listed"))
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        hours = timedelta(hours=core.settings.console_session_hours)
        repo.add_console_session(
            session, id_hash=_hash(sid), person_key=person.key, csrf=csrf, now=now, expires_at=now + hours
        )
        repo.audit(session, at=now, actor=person.key, action="console.login", detail={"source": "console"})
        await session.commit()
        return sid, ConsoleUser(person, csrf)


async def note_throttled(core: Core, *, source: str, failures: int, seconds: int) -> None:
    """Audit that ``source`` (a client address) is held off after ``failures`` refused links."""
    now = core.clock.now()
    async with core.sessions() as session:
        detail = {"source": "console", "address": source[:64], "failures": failures, "seconds": seconds}
        repo.audit(session, at=now, actor="system", action="console.login_throttled", detail=detail)
        await session.commit()


async def session_user(core: Core, sid: str | None) -> ConsoleUser | None:
    """The person signed in with session id ``sid``, or None."""
    if not sid or len(sid) > 200:
        return None
    now = core.clock.now()
    async with core.sessions() as session:
        row = await repo.get_console_session(session, id_hash=_hash(sid))
        if row is None or row.ended_at is not None or row.expires_at <= now:
            return None
        platform, _, user_id = row.person_key.partition(":")
        person = await repo.get_person(session, platform=platform, user_id=user_id)
        if person is None:
            return None
        return ConsoleUser(person, row.csrf)


async def sign_out(core: Core, sid: str, *, actor: str) -> None:
    now = core.clock.now()
    async with core.sessions() as session:
        await repo.end_console_session(session, id_hash=_hash(sid), now=now)
        repo.audit(session, at=now, actor=actor, action="console.logout", detail={"source": "console"})
        await session.commit()


async def purge(core: Core) -> None:
    """Housekeeping: links and sessions expired more than a day ago."""
    async with core.sessions() as session:
        await repo.purge_console_rows(session, before=core.clock.now() - timedelta(days=1))
        await session.commit()
