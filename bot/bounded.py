"""Bounded parsing of untrusted input: every endpoint parses JSON and XML through here.

What reaches us from the internet is refused with ``BadInput`` (the caller answers 4xx) before
it can cost a deep recursion or reach the database in a shape it refuses:

- nesting deeper than ``MAX_DEPTH`` (``json.loads`` raises RecursionError on deep arrays; the
  dicts xmltodict builds from deep XML make wechatpy and ``json.dumps`` recurse without end);
- ``NaN``/``Infinity`` (not JSON: PostgreSQL's json type refuses them);
- NUL characters and lone surrogates in any string or key (asyncpg refuses ``\\x00`` in text,
  and a lone surrogate cannot be encoded as UTF-8 for any database);
- datetimes outside ``MIN_TIME``..``MAX_TIME`` (near year 1 or 9999 a time zone shift overflows).
"""

from __future__ import annotations

import hmac
import json
from datetime import UTC, date, datetime
from typing import Any
from xml.parsers import expat

MAX_DEPTH = 32
MIN_DAY = date(1970, 1, 1)
MAX_DAY = date(2999, 12, 31)
MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(3000, 1, 1, tzinfo=UTC)


class BadInput(ValueError):
    """Input to refuse with a 4xx; ``code`` is the machine-readable error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _no_constants(name: str) -> Any:
    raise BadInput("malformed_json", f"{name} is not JSON")


def load_json(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` with bounded nesting and strings every database can store."""
    try:
        data = json.loads(raw, parse_constant=_no_constants)
    except RecursionError as exc:
        raise BadInput("too_deep", f"nesting deeper than {max_depth} levels") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput("malformed_json", f"not JSON: {exc}") from exc
    check_tree(data, max_depth=max_depth)
    return data


def check_tree(data: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Depth, NUL and surrogate check of parsed JSON (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            check_text(node)
        elif isinstance(node, dict | list):
            if depth > max_depth:
                raise BadInput("too_deep", f"nesting deeper than {max_depth} levels")
            if isinstance(node, dict):
                for key, value in node.items():
                    check_text(key)
                    stack.append((value, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in node)


def check_text(value: str) -> str:
    """The string itself when a database can store it; ``BadInput`` for NUL or a lone surrogate."""
    if "\x00" in value:
        raise BadInput("nul_character", "text contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadInput("malformed_text", "text contains a lone surrogate") from exc
    return value


def check_xml(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse XML nested deeper than ``max_depth`` (or not well-formed) before a tree is built.

    expat streams the document and calls back per element, so a deep document costs one pass
    and no recursion: we stop at the first element past the limit.
    """
    parser = expat.ParserCreate()
    depth = 0

    def start(_name: str, _attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > max_depth:
            raise BadInput("too_deep", f"XML nested deeper than {max_depth} levels")

    def end(_name: str) -> None:
        nonlocal depth
        depth -= 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        raise BadInput("malformed_xml", f"not well-formed XML: {exc}") from exc


def check_time(value: datetime) -> datetime:
    """An aware datetime between ``MIN_TIME`` and ``MAX_TIME`` (pydantic ``AfterValidator``)."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not MIN_TIME <= utc < MAX_TIME:
        raise ValueError(f"time out of range ({MIN_DAY.year}–{MAX_DAY.year})")
    return value


def check_day(value: date) -> date:
    if not MIN_DAY <= value <= MAX_DAY:
        raise ValueError(f"date out of range ({MIN_DAY.isoformat()} – {MAX_DAY.isoformat()})")
    return value


def ascii_equal(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a computed MAC/token with what a request sent, as bytes.

    Header values may hold any byte (aiohttp maps undecodable ones to surrogates) and
    ``hmac.compare_digest`` raises TypeError on non-ASCII str: anything not ASCII never matches.
    """
    if given is None:
        return False
    try:
        given_bytes = given.encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected.encode(), given_bytes)
