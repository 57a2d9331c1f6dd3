"""Text from outside, made plain for the markup of the message it goes into: one place per format.

A chat reply (``templates/chat/**.txt.j2``) is plain text; names, positions, reasons, notes and
anything else from platform events or chat are part of it. Each channel puts that text into its
own message type, and some of those read markup: WeCom app text (``<a href>`` links), WeCom
markdown (app, group robot, AI bot replies and streams: headings, ``**``, links, ``<font>``,
``<@userid>``), DingTalk markdown and ActionCard text (headings, emphasis, links, images),
Feishu text messages (``<at user_id="all">``, links, styles) and card ``markdown`` / ``lark_md``
(``<at id=all>``, links, ``<font>``). None of these subsets documents a backslash escape that
all of them honour, so markup characters are replaced by their fullwidth forms (``[`` → ``［``,
``<`` → ``＜``, …): the text stays readable, a person sees what was typed, and NFKC (what
``bot.language.normalize`` applies to what people type) folds a copied name back. A mention of
everyone typed as text (``@所有人``, ``@all``) gets a fullwidth ``＠``.

Bare URLs are left alone (our own links, such as the console's sign-in link, stay usable; none
of the characters replaced here occurs in them), as are ``_`` and ``&`` (user ids, query strings).

The senders call the function of their message type once, on the whole plain text, when they
build the platform's message (a ``Reply`` of kind ``markdown`` is markdown already). Templates
written in markdown (``*.md.j2``, the daily summary's group post) get every value escaped by
``value`` at render time (``bot.templating``), since their own markup must stay markup. Email HTML
is jinja2's HTML autoescape (``*.html.j2``); cards' JSON is built as data and serialised, never
by formatting strings.
"""

from __future__ import annotations

import re

# Characters that start markup anywhere on a line, in one of the platforms' subsets.
_INLINE = str.maketrans({"<": "＜", ">": "＞", "[": "［", "]": "］", "`": "｀"})
# Emphasis (``*x*``, ``**x**``); longer runs are left as typed: they are masks (``138****1234``).
_EMPHASIS = re.compile(r"(?<!\*)\*{1,2}(?!\*)")
_TAGS = str.maketrans({"<": "＜", ">": "＞"})
# A heading at the start of a line ("# x"), in any of the subsets.
_HEADING = re.compile(r"^([ \t]*)#", re.MULTILINE)
# A mention of everyone written as text.
_EVERYONE = re.compile(r"@(?=\s*(?:所有人|全体成员|all\b|everyone\b|here\b))", re.IGNORECASE)


def plain(text: str) -> str:
    """Plain text message types that read no markup (DingTalk text, SMS, email text, the terminal)."""
    return text


def wecom_text(text: str) -> str:
    """WeCom app and customer service (kf) text messages: they read ``<a href="…">`` as a link,
    nothing else."""
    return text.translate(_TAGS)


def markdown(text: str) -> str:
    """Plain text for a markdown-reading message: WeCom markdown (app, robot, AI bot), DingTalk
    markdown and ActionCard, Feishu text messages and card markdown / lark_md."""
    text = _HEADING.sub(r"\1＃", _EMPHASIS.sub(lambda m: "＊" * len(m.group()), text.translate(_INLINE)))
    return _EVERYONE.sub("＠", text)


def value(text: object) -> str:
    """One value inside a markdown template: on one line (a line break in a name could start a
    heading or a list), then escaped as ``markdown``."""
    return markdown(" ".join(str(text).splitlines()))
