"""Contact details never reach a group chat: phone numbers, emails and links, in any spelling.

Text is matched after folding (NFKC per character: full-width digits and ＠ become ASCII) with
separators allowed between digits; replacements are made in the original text. Two kinds of rule:

- shapes: a mainland mobile with or without +86/0086/(+86), with spaces, dashes or dots inside;
  an email with any domain (例子.中国 included); http(s) links;
- what we know: the mobile and email of every candidate whose record was loaded while a group
  reply was being made (``Core.contacts.collecting()`` around the handler; the app's sessions report
  each loaded row to it), masked
  in any spelling and wherever they stand, whatever their shape (foreign numbers, odd addresses).

A reply mentions a candidate only after loading that candidate, so the known contacts are exactly
those the reply could contain, at the cost of a set insert per loaded row.
"""

from __future__ import annotations

import contextlib
import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

from bot.chat.messages import Reply
from storage.models import Candidate

LINK_MASK = "[链接仅私聊可见]"
# Between two digits of a phone number: up to three of space, dash, dot, slash or brackets.
_SEP = r"[\s\-.·/()\[\]]{0,3}"
_CC = r"(?:[(\[]?\s*(?:\+|00)?\s*86\s*[)\]]?" + _SEP + r")?"
_MOBILE = re.compile(r"(?<!\d)" + _CC + r"(1" + _SEP + r"[3-9](?:" + _SEP + r"\d){9})(?!\d)")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*\s?@\s?([\w-]+(?:\.[\w-]+)+)")
_URL = re.compile(r"https?://\S+")
# Shorter digit strings are not worth hiding and would hide ordinary numbers.
_MIN_KNOWN_DIGITS = 7
_TAIL_DIGITS = 8


def _fold(text: str) -> tuple[str, list[int]]:
    """NFKC per character, and for each folded character the index of its original."""
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        folded = unicodedata.normalize("NFKC", ch)
        chars.append(folded)
        origin.extend([i] * len(folded))
    return "".join(chars), origin


def _sub(pattern: re.Pattern[str], text: str, replace: Callable[[re.Match[str]], str]) -> str:
    """``pattern.sub`` on the folded text, replacing the matching spans of the original."""
    folded, origin = _fold(text)
    spans = [(origin[m.start()], origin[m.end() - 1] + 1, replace(m)) for m in pattern.finditer(folded) if m.end()]
    for start, end, new in reversed(spans):
        text = text[:start] + new + text[end:]
    return text


def _digits(text: str) -> str:
    return re.sub(r"\D", "", unicodedata.normalize("NFKC", text))


def _hidden_number(digits: str) -> str:
    return f"{digits[:3]}****{digits[-4:]}"


def _mobile_patterns(mobile: str) -> Iterator[tuple[re.Pattern[str], str]]:
    """The whole number (with or without +86), then its last 8 digits (a foreign number written
    the national way, 07911 123456 for +44 7911 123456)."""
    digits = _digits(mobile)
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) < _MIN_KNOWN_DIGITS:
        return
    yield re.compile(_CC + _SEP.join(digits)), _hidden_number(digits)
    if len(digits) > _TAIL_DIGITS:
        yield re.compile(_SEP.join(digits[-_TAIL_DIGITS:])), "****" + digits[-4:]


def _domain_spellings(domain: str) -> set[str]:
    """The domain as typed, in punycode and in Unicode (bing@例子.中国 = bing@xn--fsqu00a.xn--fiqs8s)."""
    spellings = {domain}
    with contextlib.suppress(UnicodeError):
        spellings.add(domain.encode("idna").decode("ascii"))
    with contextlib.suppress(UnicodeError):
        spellings.add(domain.encode("ascii").decode("idna"))
    return {s.casefold() for s in spellings if s}


def _email_pattern(email: str) -> tuple[re.Pattern[str], str] | None:
    local, at, domain = unicodedata.normalize("NFKC", email).strip().rpartition("@")
    if not at or not local or not domain:
        return None
    dot = r"\s*[.。]\s*"
    domains = "|".join(
        dot.join(re.escape(label) for label in spelling.split("."))
        for spelling in sorted(_domain_spellings(domain), key=len, reverse=True)
    )
    pattern = re.compile(re.escape(local) + r"\s*(?:@|\(at\)|\[at\])\s*(?:" + domains + ")", re.IGNORECASE)
    return pattern, f"{local[0]}***@{domain}"


@dataclass
class KnownContacts:
    """Contacts of the candidates a reply may mention (mobiles and emails as stored)."""

    values: set[str] = field(default_factory=set)

    def add(self, *contacts: str | None) -> None:
        self.values.update(c for c in contacts if c)

    def patterns(self) -> Iterator[tuple[re.Pattern[str], str]]:
        for value in sorted(self.values, key=len, reverse=True):
            if "@" in unicodedata.normalize("NFKC", value):
                email = _email_pattern(value)
                if email is not None:
                    yield email
            else:
                yield from _mobile_patterns(value)


# The contacts being collected in this task and the tasks it started: (the collector, the set).
_COLLECTING: ContextVar[tuple[ContactCollector, KnownContacts] | None] = ContextVar("known_contacts", default=None)


class ContactCollector:
    """One app's record of the candidates loaded while a group reply or a summary is made
    (``Core.contacts``): its sessions call ``loaded`` for every object they load
    (``storage.db.session_maker(on_load=…)``), and only this app's ``collecting()`` blocks see them."""

    @contextmanager
    def collecting(self) -> Iterator[KnownContacts]:
        """Within the block, every Candidate this app loads adds its contacts to the yielded set."""
        known = KnownContacts()
        token = _COLLECTING.set((self, known))
        try:
            yield known
        finally:
            _COLLECTING.reset(token)

    def loaded(self, obj: Any) -> None:
        if not isinstance(obj, Candidate):
            return
        current = _COLLECTING.get()
        if current is not None and current[0] is self:
            current[1].add(obj.mobile, obj.email)


def _constant(value: str, _match: re.Match[str]) -> str:
    return value


def mask_contacts(text: str, known: KnownContacts | Iterable[str] | None = None) -> str:
    """Hide known contacts in any spelling, then anything shaped like a mobile or an email."""
    if not text:
        return text
    if known is not None and not isinstance(known, KnownContacts):
        known = KnownContacts(set(known))
    for pattern, hidden in known.patterns() if known is not None else ():
        text = _sub(pattern, text, functools.partial(_constant, hidden))
    text = _sub(_EMAIL, text, lambda m: f"{m.group(1)}***@{m.group(2)}")
    return _sub(_MOBILE, text, lambda m: _hidden_number(_digits(m.group(1))))


def mask_group_text(text: str, known: KnownContacts | Iterable[str] | None = None) -> str:
    """What a group may read: links hidden too (they can carry tokens or a candidate's join link)."""
    return mask_contacts(_sub(_URL, text, lambda _m: LINK_MASK), known)


def mask_sensitive(text: str, known: KnownContacts | None = None) -> str:
    """Hide phone numbers, emails and links before anything is posted to a group."""
    return mask_group_text(text, known)


def mask_reply(reply: Reply, known: KnownContacts | None = None) -> Reply:
    return replace(reply, text=mask_sensitive(reply.text, known), title=mask_sensitive(reply.title, known))
