"""Cleaning typed chat text before it is matched against commands."""

from __future__ import annotations

import re
import unicodedata

# "@面试助手 终止面试 …", "＠bot …": a leading mention is noise in group chats.
_MENTION = re.compile(r"^\s*@\S+\s+")
_TRAILING = "。.!!??~~,,、 "


def clean_text(text: str) -> str:
    """Fold full-width forms and spaces, drop a leading @mention and trailing punctuation."""
    folded = unicodedata.normalize("NFKC", text).replace("\u3000", " ")
    folded = _MENTION.sub("", folded)
    return " ".join(folded.split()).rstrip(_TRAILING)


def is_question(text: str) -> bool:
    """A message that is only question marks (half- or full-width), after an optional @mention."""
    folded = _MENTION.sub("", unicodedata.normalize("NFKC", text)).strip()
    return bool(folded) and set(folded) <= {"?"}
