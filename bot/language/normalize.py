"""From what a person typed to the text the rules read.

In order: full-width forms and compatibility characters folded (NFKC); traditional characters to
simplified (OpenCC ``t2s``); a quoted reply cut down to the new text after it (WeCom and DingTalk
put the quote first, then a dashed line; a quote may also be a first line in 「」 or a ``> `` line);
@mentions and emoji dropped; the common English and pinyin words for commands read as the
Chinese command words; spaces collapsed and trailing punctuation dropped.

Fillers (嗯, 那个, 麻烦, 帮我, 请, 吧, 一下) and near-miss spellings of command words (中止, 终至,
重新安拍, 统记) are left to ``bot.language.parse``, which knows where the candidates' names are and so
never "corrects" a name.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from bot.language import lexicon

# "@面试助手 终止…", "@_user_1 …" (Feishu's placeholders), "@王小姐": a mention is noise.
_MENTION = re.compile(r"@\S+?(?=\s|$)\s*|@[\w\u4e00-\u9fff]{1,12}(?=[\s,,::])[\s,,::]*")
# A line that separates a quoted message from the new text (WeCom: "- - - - - - -").
_QUOTE_RULE = re.compile(r"^\s*(?:[-—–─_=~]\s*){4,}$")
# A first line that only quotes (「刘经理:李明那场先停了吧」 or "> …" or 回复 刘经理:…).
_QUOTE_LINE = re.compile(r"^\s*(?:「[^」]*」|『[^』]*』|>.*|回复\s*\S+?[::].*|引用\s*\S+?[::].*)\s*$")
# WeCom / DingTalk text emoticons ([微笑], [OK], [捂脸]); a name in brackets is not one of these.
_EMOTICON = re.compile(r"\[(?:[\u4e00-\u9fff]{1,4}|[A-Za-z]{1,8})\]")
_TRAILING = "。.!!~~,,、;; "
_SPACES = re.compile(r"\s+")
_ASCII_WORD = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z]+(?![A-Za-z0-9_-])")


@functools.cache
def _converter() -> object:
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional characters to simplified ones (names included, so both sides compare alike)."""
    if text.isascii():
        return text
    return str(_converter().convert(text))  # type: ignore[attr-defined]


def quoted(text: str) -> str:
    """The quoted part of a reply ("" for none): context for a request that names no candidate."""
    rest = new_text(text)
    if rest == text:
        return ""
    return to_simplified(unicodedata.normalize("NFKC", text[: len(text) - len(rest)]))


def new_text(text: str) -> str:
    """The text after a quoted reply (the quote is what someone else said, not a request)."""
    lines = text.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if _QUOTE_RULE.match(lines[i]):
            rest = "\n".join(lines[i + 1 :]).strip()
            if rest:
                return rest
            break
    if len(lines) > 1 and _QUOTE_LINE.match(lines[0]):
        rest = "\n".join(lines[1:]).strip()
        if rest:
            return rest
    return text


# Emoji that answer a prompt (👍 👌 ✅ 🙆): a yes. Others are dropped.
_YES_EMOJI = ("\U0001f44d", "\U0001f44c", "\u2705", "\u2714", "\U0001f646", "\U0001f197")
# …and those that refuse (❌ ✖ 🙅 🚫): a no.
_NO_EMOJI = ("\u274c", "\u2716", "\U0001f645", "\U0001f6ab", "\u274e")


def _drop_symbols(text: str) -> str:
    """Emoji, pictographs and their joiners and variation selectors go; letters and punctuation stay."""
    out = []
    for ch in text:
        if ch in "\u200d\ufe0f\ufe0e\u20e3":
            continue
        category = unicodedata.category(ch)
        if category in ("So", "Sk", "Cs", "Co", "Cf"):
            continue
        out.append(ch)
    return "".join(out)


# English phrases first (how to use → 怎么用), and clock times (4pm → 下午4点).
_PHRASES = {"how to use": "怎么用", "how to": "怎么", "go ahead": "好", "what can you do": "你能干啥"}
_AM_PM = re.compile(r"(?<![\w])(\d{1,2})(?::(\d{2}))?\s*(am|pm)(?![\w])", re.IGNORECASE)


def _clock_words(m: re.Match[str]) -> str:
    part = "上午" if m.group(3).lower() == "am" else "下午"
    return f" {part}{m.group(1)}点{m.group(2) or ''} "


def _english_words(text: str) -> str:
    """terminate → 终止, ok → 好的, zhongzhi → 终止: whole ASCII words only (ids like iv-1 untouched)."""
    lowered = text.lower()
    for phrase, chinese in _PHRASES.items():
        while phrase in lowered:
            i = lowered.index(phrase)
            text = text[:i] + f" {chinese} " + text[i + len(phrase) :]
            lowered = text.lower()
    text = _AM_PM.sub(_clock_words, text)

    def swap(m: re.Match[str]) -> str:
        word = m.group(0)
        return f" {lexicon.ASCII_WORDS[word.lower()]} " if word.lower() in lexicon.ASCII_WORDS else word

    return _ASCII_WORD.sub(swap, text)


def normalize(text: str) -> str:
    """The text the rules read; "" for nothing left (an emoji, a bare mention)."""
    folded = unicodedata.normalize("NFKC", text).replace("\u3000", " ")
    folded = new_text(folded)
    folded = to_simplified(folded)
    folded = _MENTION.sub(" ", folded)
    folded = re.sub(r"\[(?:OK|ok|强|好的|赞|胜利)\]", " 好 ", folded)
    folded = _EMOTICON.sub(" ", folded)
    for emoji in _YES_EMOJI:
        folded = folded.replace(emoji, " 好 ")
    for emoji in _NO_EMOJI:
        folded = folded.replace(emoji, " 否 ")
    folded = _drop_symbols(folded)
    folded = _english_words(folded)
    return _SPACES.sub(" ", folded).strip().rstrip(_TRAILING).strip()


def is_question_marks(text: str) -> bool:
    """A message that is only question marks (half- or full-width), after an optional @mention."""
    folded = _MENTION.sub("", unicodedata.normalize("NFKC", text)).strip()
    return bool(folded) and set(folded) <= {"?"}
