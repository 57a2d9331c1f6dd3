"""Typed intents: what a chat message asks for, as handlers receive it.

An ``Intent`` is produced by the rule parser (``bot.language.parse``) or proposed by the optional
language model (``bot.language.llm``); both go through the same scope checks and confirmation
prompts. Nothing here touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    """What the message asks for."""

    terminate = "terminate"  # end an interview in progress (asks 确认 first)
    reschedule = "reschedule"  # move an interview to a new time (asks 确认 first)
    terminate_reschedule = "terminate_reschedule"  # end it now and book it again (one prompt)
    in_progress = "in_progress"  # who is interviewing now (进行中)
    show = "show"  # one candidate's interview and progress (查看)
    stats = "stats"  # exit statistics (统计)
    todos = "todos"  # my follow-ups (待办)
    todo_done = "todo_done"  # mark a follow-up done (完成 N)
    help = "help"  # the command list (帮助)
    how_to = "how_to"  # "how do I …": usage of one command, never the command itself
    confirm = "confirm"  # a standalone yes to the open prompt
    cancel = "cancel"  # a standalone no to the open prompt
    confirm_exit = "confirm_exit"  # end the interview a candidate asked help for (确认终止)
    assist = "assist"  # help a candidate continue (协助继续)
    console = "console"  # a sign-in link to the web console (后台)
    share = "share"  # share an interview with a colleague (共享)
    authorize = "authorize"  # register a person (授权)
    unknown = "unknown"  # nothing the bot does


# Kinds that change something once confirmed: never from a question, a negation or a mention.
ACTIONS = frozenset({Kind.terminate, Kind.reschedule, Kind.terminate_reschedule})


# Kinds whose documented command takes plain words (no candidate to link): 授权 hr02 HR 赵先生.
PLAIN_KINDS = frozenset(
    {
        Kind.help,
        Kind.todos,
        Kind.todo_done,
        Kind.in_progress,
        Kind.stats,
        Kind.confirm,
        Kind.cancel,
        Kind.confirm_exit,
        Kind.assist,
        Kind.console,
        Kind.share,
        Kind.authorize,
    }
)


class Guard(StrEnum):
    """Why a message that names an action must not start it."""

    question = "question"  # 吗, ?, 是不是, 有没有, 怎么
    negation = "negation"  # 不要, 别, 先不, 不用
    mention = "mention"  # names a candidate without asking for anything
    condition = "condition"  # 要是…就终止吧: asks for something later, if something happens


@dataclass(frozen=True)
class CandidateRef:
    """A candidate named in the message: the words typed, and what they were linked to (if anything)
    among the interviews the asker may see."""

    text: str
    platform_ids: tuple[str, ...] = ()  # interviews these words fit (several: ask which)
    position: str = ""  # a position named with the candidate (产品经理张三), if any


@dataclass(frozen=True)
class Intent:
    kind: Kind
    refs: tuple[CandidateRef, ...] = ()
    reason_code: str | None = None  # an exit reason the words name, by code
    words: str = ""  # the asker's own words, kept as 说明 on the exit record
    time_text: str = ""  # the time phrase, as typed (read by ``bot.services.dates``)
    args: str = ""  # the rest, for commands that take plain words (授权, 共享, 完成 N, 统计 本周)
    guard: Guard | None = None  # set when the message must not start an action
    sure: float = 1.0  # how sure the reading is (1.0: the documented syntax)
    source: str = "rules"  # "rules" or "llm"
    notes: tuple[str, ...] = field(default_factory=tuple)  # what the parser noticed (logged, not shown)

    @property
    def is_action(self) -> bool:
        return self.kind in ACTIONS
