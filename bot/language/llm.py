"""An optional language model that may only PROPOSE an intent for a message the rules cannot read.

Off unless ``BOT_LLM_BASE_URL``, ``BOT_LLM_MODEL`` and ``BOT_LLM_API_KEY`` are all set. Then
``propose`` asks an OpenAI-compatible Chat Completions endpoint (DeepSeek, Qwen in DashScope's
compatible mode, a local Ollama or vLLM, …) to call one of the bot's commands as a function, and
turns that call into an ``Intent`` with ``source="llm"`` and ``sure=0.5``. The caller treats it
like any parsed intent: the same scope checks, and HR confirms before anything changes.

What the model receives: a short system prompt, the function list, the message text with phone
numbers, e-mail addresses, links and long digit runs masked (``mask_for_model``), and optionally
the names of the candidates in scope. Never a contact, an interview id or anything from the
database. Its answer is bounded (``MAX_RESPONSE_BYTES``, ``bot.bounded.load_json``, argument
lengths) and anything unexpected (no function call, an unknown function, malformed arguments, an
HTTP error, a timeout) is no proposal: ``None`` and a log line, never an exception.

Every use writes one audit event ``llm.proposed`` (model, kind proposed, outcome, elapsed ms;
never the message text) and counts ``bot_llm_proposals{outcome}``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import aiohttp

from bot.bounded import BadInput, check_text, load_json
from bot.language.intents import CandidateRef, Intent, Kind
from bot.services.context import Core
from bot.services.prompts import Audit, audit
from bot.settings import Settings

log = logging.getLogger(__name__)

AUDIT_ACTION = "llm.proposed"
SURE = 0.5  # how sure a proposal is taken to be (the rules' documented syntax is 1.0)
MAX_RESPONSE_BYTES = 64 * 1024  # a larger answer is refused unread
MAX_TEXT_CHARS = 1000  # the message text sent (longer is cut)
MAX_NAMES = 50  # candidate names in scope sent with it
MAX_NAME_CHARS = 40
MAX_TOKENS = 300  # the model's answer is one short function call
PERIODS = ("今天", "本周", "本月")  # what 统计 accepts (handlers/stats.py)

Outcome = Literal["ok", "timeout", "error", "no_proposal"]

# --- what the model never receives -----------------------------------------------------------

# Between two digits of a number: up to three of space, dash, dot, slash or brackets.
_SEP = r"[\s\-.·/()\[\]]{0,3}"
_CC = r"(?:[(\[]?\s*(?:\+|00)?\s*86\s*[)\]]?" + _SEP + r")?"
_MOBILE = re.compile(r"(?<![0-9])" + _CC + r"1" + _SEP + r"[3-9](?:" + _SEP + r"[0-9]){9}(?![0-9])")
# 010-62345678, (0571) 8888 8888, 021 1234-5678, with or without +86.
_LANDLINE = re.compile(
    r"(?<![0-9])" + _CC + r"(?:\(0[0-9]{2,3}\)|0[0-9]{2,3})[\s\-]?[0-9]{3,4}[\s\-]?[0-9]{4}(?![0-9])"
)
# 400 / 800 service numbers: 400-800-1234.
_HOTLINE = re.compile(r"(?<![0-9])[48]00[\s\-]?[0-9]{3}[\s\-]?[0-9]{4}(?![0-9])")
_LABEL = r"(?:[A-Za-z0-9\-]+|[\u4e00-\u9fff]{1,4})"
_EMAIL = re.compile(
    r"[A-Za-z0-9._%+\-]+\s*(?:@|\(at\)|\[at\])\s*" + _LABEL + r"(?:\s*[.。]\s*" + _LABEL + r")+", re.IGNORECASE
)
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
# Seven digits or more in a row (ID card, bank card, QQ, a landline without area code), an
# eight-digit date (20260312) aside.
_DIGITS = re.compile(r"(?<![0-9])[0-9]{7,}[Xx]?(?![0-9])")
_DATE = re.compile(r"20[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])")

PHONE, EMAIL, LINK, NUMBER = "[phone]", "[email]", "[link]", "[number]"


def _number(match: re.Match[str]) -> str:
    return match.group(0) if _DATE.fullmatch(match.group(0)) else NUMBER


def mask_for_model(text: str) -> str:
    """``text`` as the model may read it: NFKC-folded (full-width digits and ＠ become ASCII), with
    links, e-mail addresses, mobile, landline and 400/800 numbers and runs of 7+ digits replaced by
    ``[link]``, ``[email]``, ``[phone]``, ``[number]``. Times and dates (明天下午3点, 3月12日
    14:00, 2026-03-12) stay."""
    text = unicodedata.normalize("NFKC", text)
    text = _URL.sub(LINK, text)
    text = _EMAIL.sub(EMAIL, text)
    for pattern in (_MOBILE, _LANDLINE, _HOTLINE):
        text = pattern.sub(PHONE, text)
    return _DIGITS.sub(_number, text)


# --- what the model is asked ------------------------------------------------------------------

SYSTEM_PROMPT = (
    "You read one chat message that an HR recruiter in China sent to 面试退出助手, a bot that ends "
    "(terminates) and reschedules candidates' AI video interviews, and shows interviews in progress, "
    "one candidate's interview, exit statistics, the sender's to-dos and the command list. The message "
    "did not match the bot's command syntax. If it clearly asks the bot to do one of these things, call "
    "the one matching function, copying the candidate's name, the reason and the time exactly as written "
    "in the message (Chinese). If it asks nothing of the bot, asks how something works, says not to do "
    "something, or you are unsure, call no function. You only propose: the bot shows your proposal and "
    "the HR confirms it before anything happens. Contact details in the message are masked as [phone], "
    "[email], [number] and [link]; never use them as a name."
)


def _tool(kind: Kind, description: str, **params: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": kind.value,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": params,
                "required": list(params),
                "additionalProperties": False,
            },
        },
    }


_CANDIDATE = {"type": "string", "description": "The candidate's name as written in the message, e.g. 张三."}
_REASON = {"type": "string", "description": "Why, in the message's words (e.g. 网络太差); empty if none is given."}
_TIME = {"type": "string", "description": "The new time as written in the message, e.g. 明天下午3点."}

# One function per intent kind the language model may propose.
TOOLS: tuple[dict[str, Any], ...] = (
    _tool(Kind.terminate, "End a candidate's interview that is in progress.", candidate=_CANDIDATE, reason=_REASON),
    _tool(Kind.reschedule, "Move a candidate's interview to a new time.", candidate=_CANDIDATE, time=_TIME),
    _tool(
        Kind.terminate_reschedule,
        "End a candidate's interview now and book it again at a new time.",
        candidate=_CANDIDATE,
        reason=_REASON,
        time=_TIME,
    ),
    _tool(Kind.in_progress, "List the interviews in progress now."),
    _tool(Kind.show, "Show one candidate's interview and its progress.", candidate=_CANDIDATE),
    _tool(
        Kind.stats,
        "Exit statistics by reason for a period.",
        period={"type": "string", "enum": list(PERIODS), "description": "今天 (today), 本周 (week), 本月 (month)."},
    ),
    _tool(Kind.todos, "List the sender's follow-ups (to-dos)."),
    _tool(Kind.help, "Show the list of commands."),
)
TOOL_KINDS: dict[str, Kind] = {t["function"]["name"]: Kind(t["function"]["name"]) for t in TOOLS}
# Longest accepted value of each argument (a longer one: no proposal).
_ARG_LIMITS = {"candidate": MAX_NAME_CHARS, "reason": 200, "time": 60, "period": 10}


def request_body(model: str, text: str, names: Sequence[str] = ()) -> dict[str, Any]:
    """The Chat Completions request for ``text`` (masked here) and the candidate ``names`` in scope."""
    system = SYSTEM_PROMPT
    shown = _scope_names(names)
    if shown:
        system += " Candidates the sender may act on: " + ", ".join(shown) + "."
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": mask_for_model(text)[:MAX_TEXT_CHARS]},
        ],
        "tools": list(TOOLS),
        "tool_choice": "auto",
        "temperature": 0,
        "max_tokens": MAX_TOKENS,
    }


def _scope_names(names: Sequence[str]) -> list[str]:
    shown: list[str] = []
    for name in names:
        clean = mask_for_model(name).strip()[:MAX_NAME_CHARS]
        if clean and clean not in shown:
            shown.append(clean)
        if len(shown) >= MAX_NAMES:
            break
    return shown


# --- what comes back --------------------------------------------------------------------------


class NoProposal(ValueError):
    """The answer holds no usable proposal; the message says why (English, never the text)."""


class Refused(Exception):
    """The endpoint's answer is refused (HTTP status, size, shape); the message says why."""


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).casefold()


def _argument(args: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = args.get(name, "")
    if not isinstance(value, str):
        raise NoProposal(f"argument {name} is not a string")
    try:
        value = check_text(value).strip()
    except BadInput as exc:
        raise NoProposal(f"argument {name} is not text ({exc.code})") from exc
    if len(value) > _ARG_LIMITS[name]:
        raise NoProposal(f"argument {name} too long")
    if required and not value:
        raise NoProposal(f"argument {name} missing")
    return value


def _candidate(args: dict[str, Any], sent: str, names: Sequence[str]) -> CandidateRef:
    """The candidate words, which must stand in the message as sent or be a name in scope: the model
    may pick words out of the message, not make up a candidate."""
    words = _argument(args, "candidate")
    squashed = _squash(words)
    if "[" in words or not (squashed in _squash(sent) or squashed in {_squash(n) for n in names}):
        raise NoProposal("candidate not in the message")
    return CandidateRef(text=words)


def intent_from_call(name: Any, arguments: Any, *, sent: str, names: Sequence[str] = (), model: str = "") -> Intent:
    """The ``Intent`` one function call proposes; ``NoProposal`` when it is not one the bot offers.

    ``arguments`` is the JSON text the API returns (an object is accepted too); ``sent`` is the
    message as the model read it (masked)."""
    kind = TOOL_KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise NoProposal("unknown function")
    if isinstance(arguments, str):
        try:
            arguments = load_json(arguments or "{}", max_depth=4)
        except BadInput as exc:
            raise NoProposal(f"arguments are not JSON ({exc.code})") from exc
    if not isinstance(arguments, dict):
        raise NoProposal("arguments are not an object")
    notes = (f"proposed by {model}",) if model else ()
    intent = Intent(kind=kind, source="llm", sure=SURE, notes=notes)
    if kind in (Kind.terminate, Kind.reschedule, Kind.terminate_reschedule, Kind.show):
        intent = replace(intent, refs=(_candidate(arguments, sent, names),))
    if kind in (Kind.terminate, Kind.terminate_reschedule):
        intent = replace(intent, words=_argument(arguments, "reason", required=False))
    if kind in (Kind.reschedule, Kind.terminate_reschedule):
        intent = replace(intent, time_text=_argument(arguments, "time"))
    if kind is Kind.stats:
        period = _argument(arguments, "period", required=False)
        if period and period not in PERIODS:
            raise NoProposal("unknown period")
        intent = replace(intent, args=period)
    return intent


def parse_response(body: bytes, *, sent: str, names: Sequence[str] = (), model: str = "") -> Intent:
    """The proposal in a Chat Completions response body: its first choice's first tool call.
    ``Refused`` when the body is not a completion, ``NoProposal`` when it proposes nothing usable."""
    try:
        data = load_json(body)
    except BadInput as exc:
        raise Refused(f"response is not JSON ({exc.code})") from exc
    choices = data.get("choices") if isinstance(data, dict) else None
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    if not isinstance(message, dict):
        raise Refused("response has no choices[0].message")
    calls = message.get("tool_calls")
    if not calls:
        raise NoProposal("no tool call")
    call = calls[0] if isinstance(calls, list) else None
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict):
        raise NoProposal("tool call has no function")
    return intent_from_call(function.get("name"), function.get("arguments"), sent=sent, names=names, model=model)


# --- the call ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Result:
    outcome: Outcome
    intent: Intent | None = None
    why: str = ""


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    if response.content_length is not None and response.content_length > MAX_RESPONSE_BYTES:
        raise Refused(f"response larger than {MAX_RESPONSE_BYTES} bytes")
    body = bytearray()
    async for chunk in response.content.iter_chunked(16 * 1024):
        body += chunk
        if len(body) > MAX_RESPONSE_BYTES:
            raise Refused(f"response larger than {MAX_RESPONSE_BYTES} bytes")
    return bytes(body)


async def _ask(http: aiohttp.ClientSession, url: str, key: str, body: dict[str, Any]) -> bytes:
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    async with http.post(url, json=body, headers=headers, allow_redirects=False) as response:
        if response.status != 200:
            raise Refused(f"HTTP {response.status}")
        return await _read_bounded(response)


async def _call(core: Core, body: dict[str, Any], http: aiohttp.ClientSession | None) -> bytes:
    settings = core.settings
    assert settings.llm_base_url and settings.llm_api_key is not None
    url = f"{settings.llm_base_url}/chat/completions"
    key = settings.llm_api_key.get_secret_value()
    async with asyncio.timeout(settings.llm_timeout_seconds):
        if http is not None:
            return await _ask(http, url, key, body)
        async with aiohttp.ClientSession() as own:
            return await _ask(own, url, key, body)


async def _propose(
    core: Core, text: str, names: Sequence[str], http: aiohttp.ClientSession | None, model: str
) -> _Result:
    try:
        body = request_body(model, text, names)
        sent = body["messages"][-1]["content"]
        raw = await _call(core, body, http)
        return _Result("ok", parse_response(raw, sent=sent, names=_scope_names(names), model=model))
    except TimeoutError:
        return _Result("timeout", why=f"no answer within {core.settings.llm_timeout_seconds:g} s")
    except NoProposal as exc:
        return _Result("no_proposal", why=str(exc))
    except Refused as exc:
        return _Result("error", why=str(exc))
    except (aiohttp.ClientError, BadInput, ValueError) as exc:
        return _Result("error", why=type(exc).__name__)
    except Exception as exc:  # an optional helper must never fail the message it was asked about
        log.exception("llm proposal failed unexpectedly")
        return _Result("error", why=type(exc).__name__)


async def propose(
    core: Core,
    text: str,
    *,
    actor: str,
    chat: str,
    names: Sequence[str] = (),
    http: aiohttp.ClientSession | None = None,
) -> Intent | None:
    """The intent the language model proposes for ``text``, or None.

    None at once (nothing sent, nothing audited) unless the model is configured
    (``Settings.llm_enabled``). Otherwise one request to ``{BOT_LLM_BASE_URL}/chat/completions``
    (through ``http`` when given, else a session of its own) within ``BOT_LLM_TIMEOUT_SECONDS``,
    one audit event ``llm.proposed`` by ``actor`` in ``chat``, and the proposal: an ``Intent``
    with ``source="llm"``, ``sure=0.5``, the candidate words in ``refs`` (they must stand in the
    message or be one of ``names``), a reason in ``words`` (``reason_code`` None), a time in
    ``time_text``, a 统计 period in ``args``. None for anything else; never raises (but
    cancellation passes through).
    """
    settings = core.settings
    if not settings.llm_enabled or settings.llm_model is None:
        return None
    model = settings.llm_model
    started = time.monotonic()
    result = await _propose(core, text, names, http, model)
    elapsed_ms = round((time.monotonic() - started) * 1000)
    kind = result.intent.kind.value if result.intent is not None else None
    detail: dict[str, Any] = {"model": model, "kind": kind, "outcome": result.outcome, "elapsed_ms": elapsed_ms}
    if result.why:
        detail["why"] = result.why
    level = logging.INFO if result.outcome in ("ok", "no_proposal") else logging.WARNING
    log.log(
        level,
        "llm proposal: outcome=%s kind=%s model=%s elapsed_ms=%d %s",
        result.outcome,
        kind,
        model,
        elapsed_ms,
        result.why,
    )
    core.metrics.llm_proposals.labels(outcome=result.outcome).inc()
    try:
        await audit(core, Audit(actor=actor, action=AUDIT_ACTION, chat=chat, detail=detail))
    except Exception:  # an unaudited proposal is not used; the message goes on without it
        log.exception("llm proposal not audited; dropped")
        return None
    return result.intent


def proposer(
    settings: Settings, http: aiohttp.ClientSession | None
) -> Callable[[Core, str, str, str, Sequence[str]], Awaitable[Intent | None]] | None:
    """What the dispatcher asks when the rules place nothing: ``propose`` on ``http`` (the app's
    shared session), or None while no model is configured (the default)."""
    if not settings.llm_enabled:
        return None

    async def ask(core: Core, text: str, actor: str, chat: str, names: Sequence[str]) -> Intent | None:
        return await propose(core, text, actor=actor, chat=chat, names=names, http=http)

    return ask
