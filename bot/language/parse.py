"""The rule parser: a normalised chat text → a typed ``Intent``.

Meaning, not position: the intent's words may stand anywhere in the sentence, the candidate is
found by linking the text against the names, positions and ids of the interviews the asker may
see (``Known``), never by cutting words at a fixed place, and the reason comes from the exit
reasons' names and synonyms anywhere in the message. Safety first: a question, a negation or a
message that only mentions a candidate carries a ``guard``, and the dispatcher never starts an
action from a guarded intent. A standalone yes or no to an open prompt is read by ``answer``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bot.language import lexicon
from bot.language.intents import PLAIN_KINDS, CandidateRef, Guard, Intent, Kind
from bot.language.normalize import to_simplified

# Documented words of the commands that take a candidate (their arguments are read by meaning).
TERMINATE_WORDS = ("终止面试", "结束面试", "停止面试", "终止")
# The prompt kind of a candidate's 求助 (bot.services.help_requests.HELP_ACTION).
HELP_REQUEST = "help_request"
RESCHEDULE_WORDS = ("重新安排", "改期")

# Punctuation and spaces between the words a person typed.
_PUNCT = re.compile(r"[\s,,.。、;;::!!~～()（）【】\[\]<>《》\"'“”‘’「」『』/\\|·…-]+")
_EDGE = " ,,.。、;;::!!~～()（）【】[]<>《》\"'“”‘’「」『』/\\|·…-"
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]{2,4}")
# What is left around a name once verbs are gone: 的面试, 那场, 这位 …
_FUNCTION_WORDS = re.compile(
    r"面试|那场|这场|那一场|这一场|那位|这位|同学|候选人|的|把|将|给|让|帮|跟|和|对|原因是|原因|因为|由于|说明|备注|他|她|了"
    r"|先|吧|一下|下|呢|啊|呀|吗|么|我|你|被|要|想|就|再|还|都|也|得|去|来|场"
)
# What follows a position that stands for a person (前端那个, 算法工程师那场, 销售代表的面试).
_REFERENT = re.compile(r"\s*(?:的|那场|那个|那位|这场|这个|这位|候选人|同学|岗位)")
_ASCII_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{1,127}")


@dataclass(frozen=True)
class Known:
    """One interview the asker may see, for linking: its id, candidate name, position and status."""

    platform_id: str
    name: str
    position: str
    status: str


@dataclass
class _Span:
    start: int
    end: int


def _mask(text: str, spans: Sequence[tuple[int, int]], fill: str = "□") -> str:
    chars = list(text)
    for start, end in spans:
        for i in range(start, end):
            chars[i] = fill
    return "".join(chars)


# ---------------------------------------------------------------- linking candidates


def _find_all(text: str, needle: str) -> list[tuple[int, int]]:
    out, i = [], text.find(needle)
    while needle and i >= 0:
        out.append((i, i + len(needle)))
        i = text.find(needle, i + 1)
    return out


def _position_words(position: str) -> list[str]:
    """产品经理 → 产品经理, 产品; 测试工程师 → 测试工程师, 测试; Java后端工程师 → Java后端, 后端, Java."""
    words = [position] if position else []
    for suffix in ("工程师", "经理", "专员", "主管", "助理", "设计师", "实习生", "总监", "代表", "师"):
        if position.endswith(suffix) and len(position) > len(suffix):
            core = position[: -len(suffix)]
            words.append(core)
            if re.fullmatch(r"[A-Za-z]+[\u4e00-\u9fff]{2,}", core):
                words.append(re.sub(r"^[A-Za-z]+", "", core))
    return [w for w in dict.fromkeys(words) if len(w) >= 2]


def _pinyin_of(text: str) -> tuple[str, ...]:
    return tuple(_syllable(ch) for ch in text)


@dataclass
class _Linked:
    refs: list[CandidateRef]
    spans: list[tuple[int, int]]


def link(text: str, known: Sequence[Known]) -> _Linked:
    """The candidates ``text`` names: by interview id, full name (longest first), or a unique
    prefix of a name (欧阳 for 欧阳明轩); a position beside a shared name picks among them."""
    spans: list[tuple[int, int]] = []
    taken = [False] * len(text)
    by_name: dict[str, list[Known]] = {}
    for k in known:
        by_name.setdefault(to_simplified(k.name), []).append(k)
    found: dict[str, list[Known]] = {}  # name as typed → interviews
    order: list[str] = []

    def claim(start: int, end: int) -> bool:
        if any(taken[start:end]):
            return False
        for i in range(start, end):
            taken[i] = True
        spans.append((start, end))
        return True

    lowered = text.lower()
    for k in known:  # ids first: iv-1, 1024
        pid = k.platform_id.lower()
        if len(pid) < 3:
            continue
        for start, end in _find_all(lowered, pid):
            before = lowered[start - 1] if start else " "
            after = lowered[end] if end < len(lowered) else " "
            if (before.isalnum() and before.isascii()) or (after.isalnum() and after.isascii()):
                continue
            if claim(start, end):
                key = f"#{k.platform_id}"
                if key not in found:
                    order.append(key)
                found.setdefault(key, []).append(k)
    for name in sorted(by_name, key=len, reverse=True):
        if len(name) < 2:
            continue
        for start, end in _find_all(text, name):
            if claim(start, end):
                if name not in found:
                    order.append(name)
                    found[name] = list(by_name[name])
    if not found:  # a unique prefix: 欧阳 → 欧阳明轩, 王芳芳 typed as 王芳? no: only prefixes of 2+ chars
        for run in _CJK_RUN.finditer(_mask(text, spans)):
            for size in (3, 2):
                for i in range(run.start(), run.end() - size + 1):
                    piece = text[i : i + size]
                    fits = [n for n in by_name if len(n) > size and n.startswith(piece)]
                    if len(fits) == 1 and claim(i, i + size):
                        order.append(piece)
                        found[piece] = list(by_name[fits[0]])
    if not found:  # a name typed by sound (何婷 for 贺婷, 李鸣 for 李明), when only one fits
        by_sound: dict[tuple[str, ...], list[str]] = {}
        for name in by_name:
            if 2 <= len(name) <= 4 and all("\u4e00" <= ch <= "\u9fff" for ch in name):
                by_sound.setdefault(_pinyin_of(name), []).append(name)
        for run in _CJK_RUN.finditer(_mask(text, spans)):
            for size in (4, 3, 2):
                for i in range(run.start(), run.end() - size + 1):
                    piece = text[i : i + size]
                    fits = by_sound.get(_pinyin_of(piece), [])
                    if len(fits) == 1 and fits[0] != piece and claim(i, i + size):
                        order.append(piece)
                        found[piece] = list(by_name[fits[0]])
    if not found:  # a position only (那个UI设计的, 算法工程师那场): the interviews of that position
        by_position: dict[str, list[Known]] = {}
        for k in known:
            for word in _position_words(k.position):
                by_position.setdefault(word, []).append(k)
        masked_now = _mask(text, spans)
        for word in sorted(by_position, key=len, reverse=True):
            start = masked_now.find(word)
            if start < 0:
                continue
            # A position names a person only as one: 那个UI设计的, 算法工程师那场, 前端那个 (not 测试一下).
            before, after = masked_now[max(0, start - 2) : start], masked_now[start + len(word) :]
            named = any(k.position == word for k in by_position[word])
            if not (named or before.endswith(("那个", "那位", "这个", "这位")) or _REFERENT.match(after)):
                continue
            if claim(start, start + len(word)):
                order.append(word)
                found[word] = by_position[word]
                break
    refs = []
    masked = _mask(text, spans)
    first_at = {
        typed: (text.find(typed) if not typed.startswith("#") else lowered.find(typed[1:].lower())) for typed in order
    }
    order.sort(key=lambda typed: first_at[typed])
    for typed in order:
        rows = found[typed]
        position = ""
        if len({r.position for r in rows}) > 1:
            for r in rows:
                for word in _position_words(r.position):
                    if word in masked:
                        position = r.position
                        for start, end in _find_all(text, word):
                            if not any(taken[start:end]):
                                spans.append((start, end))
                        break
                if position:
                    break
        if position:
            rows = [r for r in rows if r.position == position]
        # A ref by id, by sound or by position shows the candidate's real name.
        named = typed.startswith("#") or (typed not in by_name and len({r.name for r in rows}) == 1)
        label = rows[0].name if named else typed
        refs.append(CandidateRef(text=label, platform_ids=tuple(r.platform_id for r in rows), position=position))
    return _Linked(refs, spans)


# ---------------------------------------------------------------- near-miss command words


@functools.cache
def _syllable(ch: str) -> str:
    from pypinyin import Style, lazy_pinyin

    return lazy_pinyin(ch, style=Style.NORMAL)[0]


@functools.cache
def _sound_keys() -> dict[tuple[str, ...], str]:
    return {tuple(_syllable(c) for c in word): word for word in lexicon.SOUNDS_LIKE}


def warm() -> None:
    """Load the pinyin table and OpenCC's dictionary now (about 0.7 s), not on the first message,
    where it would stall every callback in flight."""
    _sound_keys()
    to_simplified("終止")


def fix_sounds(text: str, protected: Sequence[tuple[int, int]] = ()) -> str:
    """中止 → 终止, 终至 → 终止, 安拍 → 安排, 统记 → 统计: two characters that sound like a command word
    are read as it, outside ``protected`` spans (names are never "corrected")."""
    keys = _sound_keys()
    chars = list(text)
    blocked = [False] * len(text)
    for start, end in protected:
        for i in range(start, end):
            blocked[i] = True
    i = 0
    while i < len(chars) - 1:
        a, b = chars[i], chars[i + 1]
        if not blocked[i] and not blocked[i + 1] and "\u4e00" <= a <= "\u9fff" and "\u4e00" <= b <= "\u9fff":
            word = keys.get((_syllable(a), _syllable(b)))
            if word is not None and a + b != word:
                chars[i], chars[i + 1] = word[0], word[1]
                i += 2
                continue
        i += 1
    return "".join(chars)


# ---------------------------------------------------------------- standalone answers


def _consume(text: str, words: Sequence[str]) -> list[str] | None:
    """``text`` cut into ``words`` (longest first, left to right), or None when something else is left."""
    ordered = sorted(set(words), key=len, reverse=True)
    out: list[str] = []
    i = 0
    while i < len(text):
        for w in ordered:
            if text.startswith(w, i):
                out.append(w)
                i += len(w)
                break
        else:
            return None
    return out


_ANSWER_PUNCT = re.compile(r"[\s,,.。、;;!!~～…]+")


def answer(text: str, action: str) -> bool | None:
    """A standalone yes (True) or no (False) to an open prompt of kind ``action``; None when the
    message is anything else: a question (?), a sentence that merely starts with 确认, a mix."""
    bare = fix_sounds(_ANSWER_PUNCT.sub("", text.lower()))  # 确任 → 确认, 取笑 → 取消
    if not bare:
        return None
    fillers = [f for f in lexicon.FILLERS if f not in ("先",)]
    # 吧 嘛 呢 turn a yes into a question (对吧, 是嘛): not fillers for a yes.
    yes_fillers = [f for f in fillers if f not in lexicon.ASKING_PARTICLES]
    own = lexicon.YES_FOR.get(action, ())
    yes_words = [*lexicon.YES_WORDS, *own]
    yes = _consume(bare, [*yes_words, *yes_fillers])
    # A candidate's 求助 ends only on a yes that names ending it (a plain 好的 may mean "I'll help").
    needed = own if action == HELP_REQUEST else yes_words
    if yes is not None and any(w in needed for w in yes):
        return True
    no = _consume(bare, [*lexicon.NO_WORDS, *fillers, "先"])
    if no is not None and any(w in lexicon.NO_WORDS for w in no):
        return False
    return None


def pick_by_words(text: str, choices: Sequence[Known]) -> int | None:
    """Which of a numbered list the words name (测试的, 产品那个, 张三那个测试工程师): its index, when
    they name exactly one."""
    linked = link(text, choices)
    ids = {pid for ref in linked.refs for pid in ref.platform_ids}
    if len(ids) != 1:
        return None
    [chosen] = ids
    return next(i for i, k in enumerate(choices) if k.platform_id == chosen)


def names_an_action(text: str) -> bool:
    """终止吧 / 改吧: a yes that is itself an order (with a quoted message it may name who)."""
    return bool(lexicon.TERMINATE.search(text) or lexicon.RESCHEDULE.search(text))


def starts_no(text: str) -> bool:
    """算了算了,再观察下 / 取消吧,他又连上了: a message that opens with a no (a no is always safe)."""
    return bool(lexicon.NO_START.match(fix_sounds(_ANSWER_PUNCT.sub("", text))))


def pick_number(text: str) -> int | None:
    """ "2", "第2个", "选 2" → 2."""
    m = lexicon.NUMBER_PICK.match(_ANSWER_PUNCT.sub("", text))
    return int(m.group(1)) if m else None


# ---------------------------------------------------------------- the parser


def _period(text: str) -> str:
    for pattern, period in lexicon.PERIODS:
        if pattern.search(text):
            return period
    return ""


def _leftover_name(text: str) -> str:
    """Words that may be a name the asker typed but that links to nothing they may see."""
    rest = _FUNCTION_WORDS.sub(" ", text)
    for word in sorted(lexicon.FILLERS, key=len, reverse=True):
        rest = rest.replace(word, " ")
    runs = [r for r in re.findall(r"[\u4e00-\u9fff]{2,4}", rest)]
    ids = _ASCII_ID.findall(rest)
    if ids:
        return ids[0]
    return runs[0] if runs else ""


def _words_kept(text: str, remove: Sequence[tuple[int, int]], verbs: re.Pattern[str] | None) -> str:
    """The asker's own words for the exit record: what is left after the name, the time, the
    command words and the fillers, as typed."""
    rest = _mask(text, remove, " ")
    if verbs is not None:
        rest = verbs.sub(" ", rest)
    for word in (*TERMINATE_WORDS, *RESCHEDULE_WORDS, "的面试", "面试", "原因是", "原因", "说明", "备注"):
        rest = rest.replace(word, " ")
    for word in sorted(lexicon.FILLERS, key=len, reverse=True):
        if len(word) > 1:
            rest = rest.replace(word, " ")
    rest = re.sub(r"(^|\s)(?:把|将|帮|给|让|那场|这场|他|她|的|了|吧|先|因为|由于)+(?=\s|$)", " ", rest)
    # Punctuation between the words the asker kept stays as typed (网络卡顿,不想面了); punctuation
    # left around what was taken out goes.
    pieces = [piece.strip(_EDGE) for piece in re.split(r"\s+", rest)]
    return " ".join(piece for piece in pieces if piece)


_NUMERALS = {
    "半": 0.5,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
}
_UNIT_SECONDS = {"天": 86400, "小时": 3600, "钟头": 3600, "分钟": 60, "周": 604800, "星期": 604800}
# Polite requests are orders, not questions: 能不能帮我把赵敏改到明天上午十点.
_POLITE = re.compile(r"能不能|可不可以|能否|可否|麻烦|帮忙|帮我|请")
_REAL_QUESTION = re.compile(
    r"是不是|要不要|该不该|需不需要|用不用|有没有|为什么|为啥|怎么|如何|怎样|是否|对吗|对不对|行不行|好不好"
)


def _shift_seconds(text: str) -> int | None:
    """往后推一天 → +86400; 提前半小时 → -1800; None when no shift is named."""
    m = lexicon.SHIFT.search(text)
    if m is None:
        return None
    n = m.group("n")
    amount = float(n) if n.isdigit() else _NUMERALS.get(n, 0) if len(n) == 1 else 0
    if not amount:
        return None
    sign = -1 if m.group("dir") in ("往前提", "提前") else 1
    return int(sign * amount * _UNIT_SECONDS[m.group("unit")])


def parse(
    text: str,
    *,
    commands: Mapping[str, Kind] | None = None,
    known: Sequence[Known] = (),
    reason_of: Callable[[str], str | None] = lambda _: None,
    locate_time: Callable[[str], tuple[int, int] | None] = lambda _: None,
    context: str = "",
) -> Intent:
    """What ``text`` (already normalised) asks for. ``commands``: the documented command words and
    their kinds (a first word among them keeps its documented syntax); ``known``: the interviews
    the asker may see; ``reason_of``: the code of the exit reason some words name; ``locate_time``:
    the span of a time phrase in the text; ``context``: a message this one quotes (it may name the
    candidate a short request such as 终止吧 is about; it never asks for anything itself)."""
    if not text:
        return Intent(Kind.unknown)
    first, _, rest = text.partition(" ")
    plain = (commands or {}).get(first.lower())
    rest = rest.strip()
    if plain in (Kind.confirm, Kind.cancel):
        if not rest or re.fullmatch(r"#?\d{1,12}", rest):
            return Intent(plain, args=rest.lstrip("#"))
    elif plain == Kind.stats:
        return Intent(plain, args=_period(rest) or rest)
    elif plain in PLAIN_KINDS:
        return Intent(plain, args=rest)
    documented = plain is not None

    linked = link(text, known)
    fixed = fix_sounds(text, linked.spans)
    time_span = locate_time(fixed)
    protected = [*linked.spans, *([time_span] if time_span else [])]
    masked = _mask(fixed, protected)
    time_text = fixed[time_span[0] : time_span[1]] if time_span else ""
    if time_span is not None:  # 明天的面试改到晚上8点: a day named apart from the hour
        other = locate_time(masked)
        if other is not None:
            day = fixed[other[0] : other[1]]
            time_text = f"{day} {time_text}" if other[0] < time_span[0] else f"{time_text} {day}"
            protected.append(other)
            masked = _mask(fixed, protected)

    sure = 1.0 if documented else 0.8
    # A question guards the clause it is in: 谁还在面?顺便把贺婷结束了 asks one thing and orders another.
    action_at = [m.start() for m in (lexicon.TERMINATE.search(masked), lexicon.RESCHEDULE.search(masked)) if m]
    clauses = [c for c in re.split(r"(?<=[??!!。;;])", masked) if c.strip()]
    ordered = [c for c in clauses if lexicon.TERMINATE.search(c) or lexicon.RESCHEDULE.search(c)]
    asked = "".join(ordered) if action_at and len(clauses) > 1 and ordered else masked
    question = bool(lexicon.QUESTION.search(asked))
    if question and (documented or _POLITE.search(masked)):
        # 重新安排 张三 随便什么时候, 能不能改到明天上午十点: orders whose words only sound like asking.
        question = bool(_REAL_QUESTION.search(masked)) or (documented and bool(re.search(r"[??]|吗", masked)))
    negated = bool(lexicon.NEGATION.search(masked))
    condition = bool(lexicon.CONDITION.search(masked))
    has_term = bool(lexicon.TERMINATE.search(masked))
    has_resched = bool(lexicon.RESCHEDULE.search(masked)) and not lexicon.VAGUE_REBOOK.search(masked)
    # 他不想面了 asks to end it; 王芳跟我说她不想面了 only reports what she said.
    quits = bool(lexicon.QUIT_WORDS.search(masked)) and not lexicon.REPORTED.search(masked)
    shift = _shift_seconds(masked)
    if shift is not None:
        has_resched = True
    refs = tuple(linked.refs)
    if not refs and context and (has_term or has_resched) and not (question or negated or condition):
        quoted = link(context, known)  # 「王小姐:贺婷网络不行」 then 终止吧
        if len(quoted.refs) == 1:
            refs = tuple(quoted.refs)
            masked_context = _mask(context, quoted.spans, " ")
            if reason_of(_mask(fixed, protected, " ")) is None and reason_of(masked_context) is not None:
                fixed = f"{fixed} {masked_context.strip()}"
    if not refs and not negated and (has_term or has_resched or lexicon.SHOW.search(masked)):
        bare = lexicon.SHOW.sub(" ", lexicon.TERMINATE.sub(" ", lexicon.RESCHEDULE.sub(" ", masked)))
        guess = _leftover_name(bare.replace("□", " "))
        if guess and reason_of(guess) is None and not lexicon.QUESTION.search(guess):
            refs = (CandidateRef(text=guess),)
    reason_code = reason_of(_mask(fixed, protected, " "))
    guard: Guard | None = None
    if question:
        guard = Guard.question
    elif negated:
        guard = Guard.negation
    elif condition:
        guard = Guard.condition
    if negated and not (has_term or has_resched):  # 别停李明的: a "no" to stopping is still about stopping
        has_term = bool(re.search(r"停|终止|结束|关|中断", masked))
        has_resched = not has_term

    # How do I …? — never the command itself.
    if question and re.search(r"怎么|如何|怎样|咋", masked) and not linked.refs:
        if has_term or has_resched or lexicon.STATS.search(masked) or lexicon.TODOS.search(masked):
            target = Kind.reschedule if has_resched else Kind.terminate if has_term else Kind.help
            return Intent(Kind.how_to, args=str(target), guard=Guard.question)
    if lexicon.HELP_EXIT.search(masked) and not question and not negated:
        return Intent(Kind.confirm_exit, refs=tuple(linked.refs), sure=0.7)

    if not linked.refs and lexicon.IN_PROGRESS.search(masked) and not (has_resched or negated):
        return Intent(Kind.in_progress, sure=0.8)  # 有哪些面试还没结束
    if question and not linked.refs and lexicon.STATS.search(masked):
        return Intent(Kind.stats, args=_period(fixed), sure=0.8)  # 今天一共终止了几场面试
    if negated and linked.refs and lexicon.SHOW.search(masked):
        return Intent(Kind.show, refs=refs, sure=0.8)  # 我不是要终止王芳,是想看看她答到哪了
    if question and linked.refs and has_term and not has_resched and lexicon.PAST_QUESTION.search(masked):
        return Intent(Kind.show, refs=refs, sure=0.8)  # 周杰的面试为什么结束了
    if has_term and has_resched and not time_text and not lexicon.REBOOK.search(masked):
        has_resched = False  # 这个岗位改成人工面试了: a reason, not a new time
    if has_term and has_resched and refs:
        kind = Kind.terminate_reschedule
    elif has_resched and (refs or time_text):
        kind = Kind.reschedule
    elif has_term or (quits and refs):
        kind = Kind.terminate
    elif linked.refs and time_text and not question and not lexicon.SHOW.search(masked):
        kind, sure = Kind.reschedule, 0.6  # 赵敏 后天, 赵敏明天下午再面
    else:
        kind = Kind.unknown
    if plain in (Kind.terminate, Kind.reschedule) and kind != Kind.terminate_reschedule:
        kind = plain  # the documented word decides; its handler asks for what is missing
    if plain == Kind.show:
        return Intent(Kind.show, refs=refs, sure=sure)
    if kind in (Kind.terminate, Kind.reschedule, Kind.terminate_reschedule):
        verbs = lexicon.RESCHEDULE if kind == Kind.reschedule else lexicon.TERMINATE
        words = _words_kept(fixed, protected, verbs)
        if kind == Kind.terminate_reschedule:
            words = _words_kept(fixed, protected, lexicon.TERMINATE)
            words = lexicon.RESCHEDULE.sub(" ", words).strip()
        for ref in refs:
            if not ref.platform_ids:
                words = words.replace(ref.text, " ").strip()
        return Intent(
            kind,
            refs=refs,
            reason_code=reason_code,
            words=words,
            time_text=time_text,
            args=str(shift) if shift is not None and not time_text else "",
            guard=guard,
            sure=sure,
        )

    # Read-only questions and lists.
    if lexicon.STATS.search(masked) and not linked.refs:
        return Intent(Kind.stats, args=_period(fixed), sure=0.8)
    if linked.refs and (lexicon.SHOW.search(masked) or question or lexicon.IN_PROGRESS.search(masked)):
        return Intent(Kind.show, refs=refs, sure=sure)
    if lexicon.IN_PROGRESS.search(masked) or lexicon.OVERVIEW.search(masked):
        return Intent(Kind.in_progress, sure=0.8)
    if lexicon.TODOS.search(masked):
        return Intent(Kind.todos, sure=0.8)
    done = lexicon.TODO_DONE.search(masked)
    number = lexicon.TODO_NUMBER.search(masked)
    if done and number and ("待办" in masked or "#" in masked or re.search(r"第?\d+\s*[个条项号]?", masked)):
        return Intent(Kind.todo_done, args=number.group(1), sure=0.7)
    if lexicon.CONSOLE.search(masked):
        return Intent(Kind.console, sure=0.8)
    if refs and linked.refs and lexicon.SHOW.search(masked) is None:
        return Intent(Kind.show, refs=refs, guard=Guard.mention, sure=0.5)
    if lexicon.HELP.search(masked) or (question and not linked.refs):
        return Intent(Kind.help, sure=0.6)
    if lexicon.SHOW.search(masked) and not linked.refs:
        return Intent(Kind.in_progress, sure=0.6)  # 看看现在的面试, 面试进度
    if refs and lexicon.SHOW.search(masked):
        return Intent(Kind.show, refs=refs, sure=0.6)
    return Intent(Kind.unknown, refs=tuple(linked.refs), time_text=time_text, reason_code=reason_code)
