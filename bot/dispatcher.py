"""From a neutral ``IncomingMessage`` to handler replies: understand, look up the sender, check roles.

Routers (one per feature module in ``handlers/``) register commands, each for one intent kind;
the dispatcher normalises the text, answers an open prompt (a standalone yes or no, a number, a
claimed phrase) before anything else, otherwise reads the message's ``Intent``
(``bot.language.parse``, linked against the interviews the asker may see; the optional language
model only when the rules place nothing), refuses to act on a guarded intent (a question, a
negation, a mere mention), checks the sender's role, and turns errors into a polite reply.
A candidate's message (``IncomingMessage.sender_kind == "candidate"``, from a customer-service
chat) has no commands or roles: it goes to the candidate handler given as ``candidate``.
"""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.chat.masking import mask_reply
from bot.chat.messages import IncomingMessage, Reply
from bot.language import parse as rules
from bot.language.intents import PLAIN_KINDS, Guard, Intent, Kind
from bot.language.normalize import is_question_marks, normalize, quoted
from bot.logs import log_context
from bot.services import dates, interviews, people, prompts, reasons
from bot.services.context import Core
from bot.services.errors import ServiceError
from bot.services.help_requests import HELP_ACTION
from bot.services.people import Person, Role
from bot.services.prompts import PendingAction
from templates.labels import LABELS, label

log = logging.getLogger(__name__)

# What the sender reads when their message could not be processed (no template: it must not fail).
APOLOGY = LABELS["chat"]["apology"]

STAFF = frozenset({Role.admin.value, Role.manager.value, Role.hr.value})
MANAGERS = people.MANAGERS  # the same rule in the console (bot/console/web.py manager_page)

# Proposes an intent for a message the rules cannot place (``bot.language.llm``; None when off).
Proposer = Callable[[Core, str, str, str, Sequence[str]], Awaitable[Intent | None]]


@dataclass
class Context:
    core: Core
    msg: IncomingMessage
    person: Person | None
    command: str = ""
    args: str = ""
    dispatcher: Dispatcher | None = None
    # The open question this message answers (a numbered pick), for answer handlers.
    pending: PendingAction | None = None
    # The command this message named (None for an answer to an open question).
    cmd: Command | None = None
    # The arguments as the command's ``parse`` understood them.
    value: Any = None
    # What the message asks for, as read by the rules (or proposed by the language model).
    intent: Intent = field(default_factory=lambda: Intent(Kind.unknown))
    # Lines said before the handler's reply (an earlier question this message replaced).
    preface: list[str] = field(default_factory=list)
    # The rules' reading of this message, once read (``Dispatcher.read``): it costs two queries.
    read_as: Intent | None = None

    @property
    def actor(self) -> str:
        return self.msg.sender_key

    @property
    def chat(self) -> str:
        return f"{self.msg.platform}:{self.msg.chat_type}:{self.msg.chat_id}"


HandlerFn = Callable[[Context], Awaitable[list[Reply]]]
# Whether the text in ``ctx.args`` answers the open question ``ctx.pending`` (besides a number).
ClaimFn = Callable[[Context], Awaitable[bool]]
# What 确认 does for an open confirmation prompt.
ConfirmFn = Callable[[Context, PendingAction], Awaitable[list[Reply]]]


@dataclass(frozen=True)
class Step:
    """One open question of a flow: who answers it, and the worded answers it takes besides a
    number (a reason named 完成度低 answers 选择原因, it is not the command 完成)."""

    handler: HandlerFn
    claims: ClaimFn | None = None


@dataclass(frozen=True)
class Confirm:
    """What 确认 does for an open confirmation prompt, and what the same 确认 does when it is
    processed again after a crash cut it off (None: it is not repeated, the sender is told)."""

    handler: ConfirmFn
    again: ConfirmFn | None = None


@dataclass(frozen=True)
class Flow:
    """A feature's conversation declared in one place, as python-telegram-bot's
    ConversationHandler declares its states: its open questions (``PendingAction.action`` → the
    step that answers it) and the confirmation prompts it ends in (answered by a standalone yes
    or no, or the card's buttons). Its entry points are the feature's commands."""

    name: str
    steps: Mapping[str, Step] = field(default_factory=dict)
    confirms: Mapping[str, Confirm] = field(default_factory=dict)


@dataclass(frozen=True)
class Command:
    names: tuple[str, ...]
    handler: HandlerFn
    roles: frozenset[str]
    usage: str
    example: str
    # Turns the text after the command into a typed value (``ctx.value``); None means bad input,
    # answered with the ``bad_args`` template (given usage and example) before the handler runs.
    parse: Callable[[str], Any] | None = None
    bad_args: str = "chat/usage_inline.txt.j2"
    # The intent this command carries out.
    kind: Kind = Kind.unknown


@dataclass
class Router:
    name: str
    commands: list[Command] = field(default_factory=list)
    # PendingAction.action -> handler for a free-text answer (a number or a phrase).
    answers: dict[str, HandlerFn] = field(default_factory=dict)
    # PendingAction.action -> which worded answers it takes even when they start with a command name.
    claims: dict[str, ClaimFn] = field(default_factory=dict)
    # PendingAction.action of the confirmation prompts this router opens -> what 确认 does.
    confirms: dict[str, Confirm] = field(default_factory=dict)

    def flow(self, flow: Flow) -> Flow:
        """Register a feature's conversation: its questions' answer handlers and its prompts."""
        for action, step in flow.steps.items():
            if action in self.answers or action in self.confirms:
                raise ValueError(f"{flow.name}: {action!r} declared twice")
            self.answers[action] = step.handler
            if step.claims is not None:
                self.claims[action] = step.claims
        for action, confirm in flow.confirms.items():
            if action in self.answers or action in self.confirms:
                raise ValueError(f"{flow.name}: {action!r} declared twice")
            self.confirms[action] = confirm
        return flow

    def command(
        self,
        *names: str,
        kind: Kind,
        roles: frozenset[str] = STAFF,
        usage: str = "",
        example: str = "",
        parse: Callable[[str], Any] | None = None,
        bad_args: str = "chat/usage_inline.txt.j2",
    ) -> Callable[[HandlerFn], HandlerFn]:
        def register(fn: HandlerFn) -> HandlerFn:
            name = names[0] if names else str(kind)
            usage_ = usage or LABELS["command_usage"].get(name, name)
            example_ = example or LABELS["command_example"].get(name, name)
            self.commands.append(Command(names, fn, roles, usage_, example_, parse, bad_args, kind))
            return fn

        return register


class Dispatcher:
    def __init__(
        self,
        core: Core,
        routers: Iterable[Router],
        *,
        proposer: Proposer | None = None,
        candidate: HandlerFn | None = None,
    ) -> None:
        self.core = core
        # Answers a candidate's message (``IncomingMessage.sender_kind == "candidate"``); None: ignored.
        self.candidate = candidate
        self.commands: dict[str, Command] = {}
        self.by_kind: dict[Kind, Command] = {}
        self.answers: dict[str, HandlerFn] = {}
        self.claims: dict[str, ClaimFn] = {}
        # Confirmation prompts (PendingAction.action) -> what 确认 does.
        self.confirms: dict[str, Confirm] = {}
        self.proposer = proposer
        for router in routers:
            self.answers.update(router.answers)
            self.claims.update(router.claims)
            self.confirms.update(router.confirms)
            for cmd in router.commands:
                if cmd.kind in self.by_kind:
                    raise ValueError(f"intent {cmd.kind} handled twice")
                self.by_kind[cmd.kind] = cmd
                for name in cmd.names:
                    if name in self.commands:
                        raise ValueError(f"command {name!r} registered twice")
                    self.commands[name] = cmd
        # The documented first words, for the parser (终止面试 → terminate).
        self.words: dict[str, Kind] = {name: cmd.kind for name, cmd in self.commands.items()}

    def names_for(self, person: Person | None) -> list[str]:
        """Every name (and alias) of the commands ``person`` may use."""
        return [name for name, cmd in self.commands.items() if person is not None and person.role in cmd.roles]

    def visible_commands(self, person: Person | None) -> Sequence[Command]:
        seen: list[Command] = []
        for cmd in self.commands.values():
            if cmd not in seen and cmd.names and person is not None and person.role in cmd.roles:
                seen.append(cmd)
        return seen

    async def understand(self, text: str, person: Person | None, actor: str, context: str = "") -> Intent:
        """The intent of a normalised ``text`` from ``person``, linked against what they may see
        (``context``: the message it quotes, if any)."""
        if not text:
            return Intent(Kind.unknown)
        first = text.partition(" ")[0]
        kind = self.words.get(first)
        bare = kind in (Kind.confirm, Kind.cancel) and text == first
        if bare or (kind in PLAIN_KINDS and kind not in (Kind.confirm, Kind.cancel)):
            # 进行中, 待办, 授权 …, a bare 确认: nothing to link, nothing to look up
            return rules.parse(text, commands=self.words)
        scope = None if person is not None and person.role in MANAGERS else actor
        known = [rules.Known(*row) for row in await interviews.known_names(self.core, hr_key=scope)]
        offered = await reasons.active(self.core)

        def reason_of(words: str) -> str | None:
            found = reasons.match_reason(words, offered)
            return found.code if found is not None else None

        return rules.parse(
            text, commands=self.words, known=known, reason_of=reason_of, locate_time=dates.locate, context=context
        )

    async def handle(self, msg: IncomingMessage, *, final: bool = True) -> list[Reply]:
        """The replies to ``msg``. With ``final=False`` (a try that will be retried) a handler error
        propagates, so the stored message is processed again instead of being answered with an
        apology; the last try (``final=True``) answers 抱歉,处理时出错了."""
        with log_context(message_id=msg.msg_id, sender=msg.sender_key):
            if msg.chat_type != "group":
                return await self._handle(msg, final=final)
            # A group reply hides contact details, and above all those of the candidates it was made from.
            with self.core.contacts.collecting() as known:
                replies = await self._handle(msg, final=final)
            return [mask_reply(r, known) for r in replies]

    async def _handle(self, msg: IncomingMessage, *, final: bool) -> list[Reply]:
        if msg.sender_kind == "candidate":
            return await self._candidate(msg, final=final)
        text = normalize(msg.text)
        if is_question_marks(msg.text):
            text = self.by_kind[Kind.help].names[0]  # a lone ? or ？ asks for help
        if not text:
            return []
        person = await people.get(self.core, platform=msg.platform, user_id=msg.sender_id)
        ctx = Context(core=self.core, msg=msg, person=person, dispatcher=self, args=text)
        render = self.core.templates.render
        if person is None:
            # Not registered: say so, with the id the admin needs to register them.
            ctx.command = text.partition(" ")[0] if text.partition(" ")[0] in self.commands else "(unknown)"
            await self._refuse(ctx)
            return [Reply(render("chat/not_registered.txt.j2", platform=msg.platform, user_id=msg.sender_id))]
        pending = None
        if person.role in STAFF:
            pending = await prompts.latest_open(
                self.core,
                requester=msg.sender_key,
                chat_id=msg.chat_id,
                actions=[*self.answers, *sorted(self.confirms)],
            )
        routed = await self._route(ctx, text, pending)
        if routed is None:
            return await self._not_understood(ctx, text, pending)
        handler, cmd = routed
        if cmd is not None:
            ctx.cmd = cmd
            ctx.command = cmd.names[0] if cmd.names else str(cmd.kind)
            if person.role not in cmd.roles:
                await self._refuse(ctx)
                return [Reply(render("chat/no_permission.txt.j2"))]
            if cmd.parse is not None:
                ctx.value = cmd.parse(ctx.args)
                if ctx.value is None:
                    return [Reply(render(cmd.bad_args, usage=cmd.usage, example=cmd.example))]
        started = time.perf_counter()
        try:
            replies = await handler(ctx)
            if ctx.preface and replies:
                first = replies[0]
                replies[0] = Reply(
                    "\n".join([*ctx.preface, first.text]), kind=first.kind, title=first.title, buttons=first.buttons
                )
            return replies
        except ServiceError as exc:
            # A refusal, not a failure: its message is the reply (one place for every handler).
            return [Reply("\n".join([*ctx.preface, exc.message]))]
        except Exception:
            if not final:
                log.warning("handler for %r failed (message %s); it will be retried", ctx.command, msg.msg_id)
                raise
            log.exception("handler for %r failed (message %s)", ctx.command, msg.msg_id)
            return self.apology()
        finally:
            name = ctx.cmd.names[0] if ctx.cmd and ctx.cmd.names else ctx.command
            self.core.metrics.command_seconds.labels(command=name).observe(time.perf_counter() - started)

    async def _candidate(self, msg: IncomingMessage, *, final: bool) -> list[Reply]:
        """A candidate's message: no commands, no roles; the candidate handlers answer it."""
        if self.candidate is None or not msg.text.strip():
            return []
        ctx = Context(core=self.core, msg=msg, person=None, dispatcher=self, command="(candidate)", args=msg.text)
        try:
            return await self.candidate(ctx)
        except ServiceError as exc:
            return [Reply(exc.message)]
        except Exception:
            if not final:
                log.warning("candidate handler failed (message %s); it will be retried", msg.msg_id)
                raise
            log.exception("candidate handler failed (message %s)", msg.msg_id)
            return self.apology()

    async def _route(
        self, ctx: Context, text: str, pending: PendingAction | None
    ) -> tuple[HandlerFn, Command | None] | None:
        """Which handler takes this message (and the command it runs, if any); None: nothing fits."""
        # 1. An open confirmation prompt: a standalone yes or no (never a sentence that merely starts with 确认).
        if pending is not None and pending.action in self.confirms:
            yes = rules.answer(text, pending.action)
            if yes is None and rules.starts_no(text) and not await self._new_request(ctx, text):
                yes = False
            if yes is not None:
                cmd = self.by_kind[Kind.confirm if yes else Kind.cancel]
                ctx.args, ctx.intent = "", Intent(cmd.kind)
                return cmd.handler, cmd
        # 1b. No prompt here, but a candidate's 求助 waits for this HR: a yes that names ending it.
        if pending is None and rules.answer(text, HELP_ACTION) is True:
            help_request = await prompts.latest_open(
                self.core, requester=ctx.actor, chat_id=None, actions=[HELP_ACTION]
            )
            if help_request is not None:
                cmd = self.by_kind[Kind.confirm_exit]
                ctx.args, ctx.intent = "", Intent(cmd.kind)
                return cmd.handler, cmd
        # 1c. A standalone yes with nothing open: 确认 says there is nothing to confirm.
        if pending is None and rules.answer(text, "") is True and not rules.names_an_action(text):
            cmd = self.by_kind[Kind.confirm]
            ctx.args, ctx.intent = "", Intent(cmd.kind)
            return cmd.handler, cmd
        # 2. An open numbered question: a number, or words its handler claims.
        if pending is not None and pending.action in self.answers:
            number = rules.pick_number(text)
            probe = Context(core=self.core, msg=ctx.msg, person=ctx.person, args=text, dispatcher=self, pending=pending)
            claims = self.claims.get(pending.action)
            claimed = number is None and claims is not None and await claims(probe)
            if claimed and (text.partition(" ")[0] in self.commands or await self._new_request(ctx, text)):
                claimed = False  # 终止面试 贺婷 网络卡顿 names a reason, but it is a new request
            if number is not None or claimed:
                ctx.pending, ctx.command = pending, "(answer)"
                ctx.args = str(number) if number is not None else text
                return self.answers[pending.action], None
        # 3. What the message asks for.
        intent = await self.read(ctx, text)
        if intent.kind == Kind.unknown and pending is None and self.proposer is not None:
            # The model only proposes: the intent goes through the same scope checks and prompts.
            scope = None if ctx.person is not None and ctx.person.role in MANAGERS else ctx.actor
            names = sorted({row[1] for row in await interviews.known_names(self.core, hr_key=scope)})
            proposed = await self.proposer(self.core, text, ctx.actor, ctx.chat, names)
            if proposed is not None and proposed.kind != Kind.unknown:
                intent = proposed
                ctx.preface.append(self.core.templates.render("chat/language/proposed.txt.j2"))
        ctx.intent = intent
        if intent.kind == Kind.unknown or (pending is not None and intent.sure < 0.7 and not intent.is_action):
            if pending is not None and pending.action in self.answers:
                # Not a command: the open question's handler re-asks, saying what it was about.
                ctx.pending, ctx.command, ctx.args = pending, "(answer)", text
                what = await self.describe(pending)
                ctx.preface.append(self.core.templates.render("chat/language/about.txt.j2", what=what))
                return self.answers[pending.action], None
            return None
        if intent.guard is not None and (
            intent.is_action or (intent.kind == Kind.show and intent.guard == Guard.mention)
        ):
            return await self._guarded(ctx, intent, pending)
        if intent.kind == Kind.confirm_exit and intent.refs:
            # 同意刘洋退出: only the 求助 of that candidate.
            help_request = await prompts.latest_open(
                self.core, requester=ctx.actor, chat_id=None, actions=[HELP_ACTION]
            )
            wanted = {pid for ref in intent.refs for pid in ref.platform_ids}
            if help_request is None or help_request.params.get("platform_id") not in wanted:
                return None
        found = self.by_kind.get(intent.kind)
        if found is None:
            return None
        ctx.args = intent.args
        if pending is not None and pending.action in self.answers and intent.is_action:
            # A new request replaces the numbered question left open (and the reply says so); an
            # open confirmation stays answerable by its own card's button.
            if await prompts.close(self.core, pending.id, prompts.ActionState.cancelled):
                what = await self.describe(pending)
                ctx.preface.append(self.core.templates.render("chat/language/replaced.txt.j2", what=what))
        return found.handler, found

    async def read(self, ctx: Context, text: str) -> Intent:
        """The rules' intent of this message, read once however many steps ask."""
        if ctx.read_as is None:
            ctx.read_as = await self.understand(text, ctx.person, ctx.actor, quoted(ctx.msg.text))
        return ctx.read_as

    async def _new_request(self, ctx: Context, text: str) -> bool:
        """Whether ``text`` asks for an action on a candidate it names (so it answers no question)."""
        intent = await self.read(ctx, text)
        return intent.is_action and any(ref.platform_ids for ref in intent.refs)

    async def _guarded(
        self, ctx: Context, intent: Intent, pending: PendingAction | None
    ) -> tuple[HandlerFn, Command | None]:
        """A question, a negation or a mention that names an action: nothing is done. A negation of
        the open prompt's action is a no to it."""
        if intent.guard == Guard.negation and pending is not None and pending.action in self.confirms:
            cmd = self.by_kind[Kind.cancel]
            ctx.args = ""
            return cmd.handler, cmd

        async def explain(ctx: Context) -> list[Reply]:
            shown = await self._refs_text(intent)
            template = f"chat/language/{intent.guard}.txt.j2"
            name = intent.refs[0].text if intent.refs else ""
            return [Reply(self.core.templates.render(template, kind=str(intent.kind), who=shown, name=name))]

        return explain, None

    async def _refs_text(self, intent: Intent) -> str:
        """张三(产品经理,进行中) for the candidates an intent names."""
        parts = []
        for ref in intent.refs:
            found = await interviews.get_many(self.core, ref.platform_ids[:3])
            if not found:
                parts.append(ref.text)
            for interview, candidate in found:
                status = label(interview.status, "interview_status")
                parts.append(
                    f"{candidate.name}({interview.position},{status})" if interview.position else candidate.name
                )
        return LABELS["chat"]["list_separator"].join(parts)

    async def describe(self, pending: PendingAction) -> str:
        """What an open question or prompt is about, in a few words (选择终止原因:李明)."""
        what = label(pending.action, "pending_action")
        platform_id = pending.params.get("platform_id")
        if platform_id:
            found = await interviews.get_with_candidate(self.core, str(platform_id))
            if found is not None:
                return f"{what}:{found[1].name}"
        return what

    async def _not_understood(self, ctx: Context, text: str, pending: PendingAction | None) -> list[Reply]:
        render = self.core.templates.render
        word = text if len(text) <= 20 else text[:20] + "…"
        if pending is not None:
            what = await self.describe(pending)
            is_prompt = pending.action in self.confirms
            return [Reply(render("chat/language/still_open.txt.j2", word=word, what=what, prompt=is_prompt))]
        # Hints name only commands the asker may use.
        close = difflib.get_close_matches(text.partition(" ")[0], self.names_for(ctx.person), n=1, cutoff=0.3)
        return [Reply(render("chat/unknown_command.txt.j2", word=word, hint=close[0] if close else ""))]

    @staticmethod
    def apology() -> list[Reply]:
        """What the sender is told when their message could not be processed."""
        return [Reply(APOLOGY)]

    async def _refuse(self, ctx: Context) -> None:
        detail = {"command": ctx.command, "role": ctx.person.role if ctx.person else None}
        await prompts.audit(self.core, prompts.Audit(ctx.actor, "command.refused", chat=ctx.chat, detail=detail))
        log.info("refused %s for %s", ctx.command, ctx.actor)
