"""Jinja2 environments: autoescape on for HTML, off for chat text, SMS and email text; every value in a
markdown template (``*.md.j2``) escaped for markdown (``bot.chat.markup.value``) unless marked ``|safe``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context
from markupsafe import Markup

from bot.chat import markup
from bot.delivery import problem_of
from templates.labels import label


def _send_problem(error: str | None) -> str:
    problem = problem_of(error)
    return label(problem.value, "send_problem") if problem else ""


@pass_context
def _finalize(context: Context, value: Any) -> Any:
    """Every ``{{ value }}`` of a markdown template is text, not markup (our own links: ``|safe``)."""
    if context.name and context.name.endswith(".md.j2") and not isinstance(value, Markup):
        return markup.value(value)
    return value


class Templates:
    """Renders ``templates/<name>``; a company's directory (BOT_TEMPLATE_DIR) overrides any file."""

    def __init__(self, override_dir: str | Path | None = None) -> None:
        loaders: list[Any] = []
        if override_dir:
            loaders.append(FileSystemLoader(str(override_dir)))
        loaders.append(PackageLoader("templates", ""))
        self.env = Environment(
            loader=ChoiceLoader(loaders),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False, default=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            finalize=_finalize,
            # The packaged templates do not change under a running service: looked up once, not
            # checked on disk at every render. A company's own directory is re-read when edited.
            auto_reload=bool(override_dir),
        )
        # {{ code|label("channel") }}: the Chinese label of a stored code (templates/labels.py).
        self.env.filters["label"] = label
        # {{ error|send_problem }}: what a stored delivery error means for people, "" when unknown.
        self.env.filters["send_problem"] = _send_problem

    def render(self, name: str, /, **context: Any) -> str:
        return self.env.get_template(name).render(**context).strip()

    def exists(self, name: str) -> bool:
        try:
            self.env.get_template(name)
        except Exception:  # noqa: BLE001 - jinja raises TemplateNotFound subclasses
            return False
        return True
