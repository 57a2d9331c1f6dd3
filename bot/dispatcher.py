"""From a neutral ``IncomingMessage`` to handler replies: parse, look up the sender, check roles.

Routers (one per feature module in ``handlers/``) register commands; the dispatcher picks
one by the first word, checks the sender's role, and turns errors into a polite reply.
"""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.chat import masking
from bot.chat.masking import mask_reply
from bot.chat.messages import IncomingMessage, Reply
from bot.chat.text import clean_text, is_question
from bot.logs import log_context
from bot.services import people, prompts
from bot.services.context import Core
from bot.services.errors import ServiceError
from bot.services.people import Person, Role
from bot.services.prompts import PendingAction
from templates.labels import LABELS

log = logging.getLogger(__name__)

# What the sender reads when their message could not be processed (no template: it must not fail).
APOLOGY = LABELS["chat"]["apology"]

STAFF = frozenset({Role.admin.value, Role.manager.value, Role.hr.value})
MANAGERS = frozenset({Role.admin.value, Role.manager.value})


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

    @property
    def actor(self) -> str:
        return self.msg.sender_key

    @property
    def chat(self) -> str:
        return f"{self.msg.platform}:{self.msg.chat_type}:{self.msg.chat_id}"


HandlerFn = Callable[[Context], Awaitable[list[Reply]]]
# Whether the text in ``ctx.args`` answers the open question ``ctx.pending`` (besides a number).
ClaimFn = Callable[[Context], Awaitable[bool]]


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


@dataclass
class Router:
    name: str
    commands: list[Command] = field(default_factory=list)
    # PendingAction.action -> handler for a free-text answer (a number or a phrase).
    answers: dict[str, HandlerFn] = field(default_factory=dict)
    # PendingAction.action -> which worded answers it takes even when they start with a command name.
    claims: dict[str, ClaimFn] = field(default_factory=dict)

    def answer(self, action: str, *, claims: ClaimFn | None = None) -> Callable[[HandlerFn], HandlerFn]:
        def register(fn: HandlerFn) -> HandlerFn:
            self.answers[action] = fn
            if claims is not None:
                self.claims[action] = claims
            return fn

        return register

    def command(
        self,
        *names: str,
        roles: frozenset[str] = STAFF,
        usage: str = "",
        example: str = "",
        parse: Callable[[str], Any] | None = None,
        bad_args: str = "chat/usage_inline.txt.j2",
    ) -> Callable[[HandlerFn], HandlerFn]:
        def register(fn: HandlerFn) -> HandlerFn:
            usage_ = usage or LABELS["command_usage"].get(names[0], names[0])
            example_ = example or LABELS["command_example"].get(names[0], names[0])
            self.commands.append(Command(names, fn, roles, usage_, example_, parse, bad_args))
            return fn

        return register


class Dispatcher:
    def __init__(self, core: Core, routers: Iterable[Router]) -> None:
        self.core = core
        self.commands: dict[str, Command] = {}
        self.answers: dict[str, HandlerFn] = {}
        self.claims: dict[str, ClaimFn] = {}
        for router in routers:
            self.answers.update(router.answers)
            self.claims.update(router.claims)
            for cmd in router.commands:
                for name in cmd.names:
                    if name in self.commands:
                        raise ValueError(f"command {name!r} registered twice")
                    self.commands[name] = cmd

    def names_for(self, person: Person | None) -> list[str]:
        """Every name (and alias) of the commands ``person`` may use."""
        return [name for name, cmd in self.commands.items() if person is not None and person.role in cmd.roles]

    def visible_commands(self, person: Person | None) -> Sequence[Command]:
        seen: list[Command] = []
        for cmd in self.commands.values():
            if cmd not in seen and person is not None and person.role in cmd.roles:
                seen.append(cmd)
        return seen

    def _match(self, text: str) -> tuple[Command | None, str, str]:
        word, _, rest = text.partition(" ")
        if word.lower() in self.commands:
            return self.commands[word.lower()], word.lower(), rest.strip()
        # Commands typed without a space: "终止面试张三"
        for name in sorted(self.commands, key=len, reverse=True):
            if text.startswith(name):
                return self.commands[name], name, text[len(name) :].strip()
        return None, word, rest

    async def _answers_pending(self, ctx: Context, pending: PendingAction, text: str) -> bool:
        """An open question's answer is matched before command names: a number, or words its
        handler claims (a reason named 完成度低 is not the command 完成). A message whose first
        word is a command (取消, 确认, 查看 张三) stays that command."""
        if text.partition(" ")[0].lower() in self.commands:
            return False
        if text.isdigit():
            return True
        claims = self.claims.get(pending.action)
        if claims is None:
            return False
        probe = Context(core=self.core, msg=ctx.msg, person=ctx.person, args=text, dispatcher=self, pending=pending)
        return await claims(probe)

    async def handle(self, msg: IncomingMessage, *, final: bool = True) -> list[Reply]:
        """The replies to ``msg``. With ``final=False`` (a try that will be retried) a handler error
        propagates, so the stored message is processed again instead of being answered with an
        apology; the last try (``final=True``) answers 抱歉,处理时出错了."""
        with log_context(message_id=msg.msg_id, sender=msg.sender_key):
            if msg.chat_type != "group":
                return await self._handle(msg, final=final)
            # A group reply hides contact details, and above all those of the candidates it was made from.
            with masking.collecting() as known:
                replies = await self._handle(msg, final=final)
            return [mask_reply(r, known) for r in replies]

    async def _handle(self, msg: IncomingMessage, *, final: bool) -> list[Reply]:
        text = clean_text(msg.text)
        if not text and is_question(msg.text):
            text = "帮助"  # a lone ? or ？ asks for help
        if not text:
            return []
        person = await people.get(self.core, platform=msg.platform, user_id=msg.sender_id)
        pending = None
        if person is not None and person.role in STAFF:
            pending = await prompts.latest_open(
                self.core, requester=msg.sender_key, chat_id=msg.chat_id, actions=list(self.answers)
            )
        ctx = Context(core=self.core, msg=msg, person=person, dispatcher=self)
        cmd, word, args = self._match(text)
        if cmd is not None and pending is not None and await self._answers_pending(ctx, pending, text):
            cmd = None
        handler: HandlerFn | None = cmd.handler if cmd else None
        render = self.core.templates.render
        if person is None:
            # Not registered: say so, with the id the admin needs to register them.
            ctx.command, ctx.args = (word if cmd else "(unknown)"), args
            await self._refuse(ctx)
            return [Reply(render("chat/not_registered.txt.j2", platform=msg.platform, user_id=msg.sender_id))]
        if cmd is None and pending is not None:
            handler, ctx.pending, ctx.command, ctx.args = self.answers[pending.action], pending, "(answer)", text
        elif cmd is None:
            # Hints name only commands the asker may use.
            close = difflib.get_close_matches(word, self.names_for(person), n=1, cutoff=0.3)
            return [Reply(render("chat/unknown_command.txt.j2", word=word, hint=close[0] if close else ""))]
        else:
            ctx.command, ctx.args, ctx.cmd = word, args, cmd
            if person.role not in cmd.roles:
                await self._refuse(ctx)
                return [Reply(render("chat/no_permission.txt.j2"))]
            if cmd.parse is not None:
                ctx.value = cmd.parse(args)
                if ctx.value is None:
                    return [Reply(render(cmd.bad_args, usage=cmd.usage, example=cmd.example))]
        assert handler is not None
        started = time.perf_counter()
        try:
            return await handler(ctx)
        except ServiceError as exc:
            # A refusal, not a failure: its message is the reply (one place for every handler).
            return [Reply(exc.message)]
        except Exception:
            if not final:
                log.warning("handler for %r failed (message %s); it will be retried", ctx.command, msg.msg_id)
                raise
            log.exception("handler for %r failed (message %s)", ctx.command, msg.msg_id)
            return self.apology()
        finally:
            name = ctx.cmd.names[0] if ctx.cmd else ctx.command  # one series per command, aliases together
            self.core.metrics.command_seconds.labels(command=name).observe(time.perf_counter() - started)

    @staticmethod
    def apology() -> list[Reply]:
        """What the sender is told when their message could not be processed."""
        return [Reply(APOLOGY)]

    async def _refuse(self, ctx: Context) -> None:
        detail = {"command": ctx.command, "role": ctx.person.role if ctx.person else None}
        await prompts.audit(self.core, prompts.Audit(ctx.actor, "command.refused", chat=ctx.chat, detail=detail))
        log.info("refused %s for %s", ctx.command, ctx.actor)
