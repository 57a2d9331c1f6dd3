"""Matching what a person typed to a configured exit reason."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from storage.models import ExitReason

# Characters a hurried typist leaves around a phrase (stripped as a set, either end).
TRAILING_PUNCTUATION = "。.!!??~~,,、"


def normalize(text: str) -> str:
    """Fold full-width forms, drop spaces and trailing punctuation, lower-case."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in folded if not ch.isspace()).strip(TRAILING_PUNCTUATION).lower()


def match_reason(text: str, reasons: Sequence[ExitReason]) -> ExitReason | None:
    """Exact name, code or synonym first; then the longest synonym contained in the text."""
    needle = normalize(text)
    if not needle:
        return None
    for reason in reasons:
        names = {normalize(reason.name), reason.code.lower(), *(normalize(s) for s in reason.synonyms)}
        if needle in names:
            return reason
    best: tuple[int, ExitReason] | None = None
    for reason in reasons:
        for phrase in (reason.name, *reason.synonyms):
            p = normalize(phrase)
            if p and p in needle and (best is None or len(p) > best[0]):
                best = (len(p), reason)
    return best[1] if best else None
