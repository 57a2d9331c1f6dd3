"""What a candidate writes to the customer-service chat, read by rules (no command words).

A candidate does not know our commands: 求助, 帮助, 需要帮助, 人工 or 联系HR asks for a person; 我不想面了
or 我要退出 says they want to stop (a help request that asks to end it). A question (可以退出吗?) or a
negation (不需要求助) asks for nothing: it is answered with the interview's state, and opens nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.language import lexicon

_HELP = re.compile(r"求助|需要帮助|帮助|人工|联系\s*(?:hr|HR|人事|招聘)|找\s*(?:hr|HR|人事)")
_EXIT = re.compile(r"不想面了?|不面了|我要退出|想退出|退出面试|放弃面试|结束面试|终止面试")
# 不需要求助, 不用人工, 别联系HR, 我不想退出: a no to what follows.
_NEGATED = re.compile(r"(?:不|别|无需|没|甭)(?:需要|用|要|想|必)?\s*(?:求助|帮助|人工|联系|找|退出|结束|终止|放弃)")
# Words in front of the ask that are not its reason (我要求助, 转人工).
_ASK_WORDS = re.compile(r"(?:我|本人)?(?:要|想|需要|请求|申请|转|找)?")
_EDGES = re.compile(r"^[\s::,,。、;;!!~～-]+|[\s::,,。、;;!!~～-]+$")


@dataclass(frozen=True)
class CandidateAsk:
    """``help``: open a help request (``wants_exit`` when they want to stop; ``reason`` in their
    words, "" when none); ``status``: tell them where their interview stands."""

    kind: Literal["help", "status"]
    reason: str = ""
    wants_exit: bool = False


def read(text: str) -> CandidateAsk:
    """The candidate's ask in a normalised ``text`` (``bot.language.normalize``)."""
    if not text or lexicon.QUESTION.search(text) or _NEGATED.search(text):
        return CandidateAsk("status")
    asks_help = _HELP.search(text)
    exits = _EXIT.search(text)
    if not asks_help and not exits:
        return CandidateAsk("status")
    reason = text
    if asks_help:
        before = _EDGES.sub("", text[: asks_help.start()])
        before = "" if _ASK_WORDS.fullmatch(before) else before
        reason = f"{before} {text[asks_help.end() :]}"
    return CandidateAsk("help", reason=_EDGES.sub("", reason).strip(), wants_exit=bool(exits))
