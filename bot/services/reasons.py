"""Matching what a person typed to a configured exit reason."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from bot.services.context import Core
from storage import repo
from storage.models import ExitReason

__all__ = ["ExitReason", "active", "match_reason", "normalize", "shown_detail"]

# Characters a hurried typist leaves around a phrase (stripped as a set, either end).
TRAILING_PUNCTUATION = "。.!!??~~,,、"


def normalize(text: str) -> str:
    """Fold full-width forms, drop spaces and trailing punctuation, lower-case."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in folded if not ch.isspace()).strip(TRAILING_PUNCTUATION).lower()


def match_reason(text: str, reasons: Sequence[ExitReason]) -> ExitReason | None:
    """Exact name, code or synonym first; then the longest synonym contained in the text.

    None when nothing fits, or when two reasons' longest phrases found in the text are equally
    long ("网络卡顿,不想面了"): then a person picks, nothing is guessed.
    """
    needle = normalize(text)
    if not needle:
        return None
    for reason in reasons:
        names = {normalize(reason.name), reason.code.lower(), *(normalize(s) for s in reason.synonyms)}
        if needle in names:
            return reason
    longest: dict[int, int] = {}  # reason id -> longest phrase of it in the text
    by_id = {id(reason): reason for reason in reasons}
    for reason in reasons:
        for phrase in (reason.name, *reason.synonyms):
            p = normalize(phrase)
            if p and p in needle:
                longest[id(reason)] = max(longest.get(id(reason), 0), len(p))
    if not longest:
        return None
    best = max(longest.values())
    winners = [key for key, length in longest.items() if length == best]
    return by_id[winners[0]] if len(winners) == 1 else None


def shown_detail(detail: str, *, name: str, code: str) -> str:
    """The words typed, for people who read exit records; "" when they only name the reason."""
    text = detail.strip()
    if not text or normalize(text) in {normalize(name), code.lower()}:
        return ""
    return text


async def active(core: Core) -> Sequence[ExitReason]:
    """The exit reasons offered for a pick, in their configured order."""
    async with core.sessions() as session:
        return await repo.list_reasons(session)
