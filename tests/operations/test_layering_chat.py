"""Import rules of the chat layers, checked on the code: the neutral chat layer at the bottom,
handlers reaching data only through services, nothing above channels depending on them."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def offending(files: list[Path], banned: tuple[str, ...]) -> list[str]:
    return [
        f"{f.relative_to(ROOT)} imports {name}"
        for f in files
        for name in sorted(imports(f))
        if any(name == b or name.startswith(b + ".") for b in banned)
    ]


def test_handlers_reach_data_only_through_services() -> None:
    files = sorted((ROOT / "handlers").rglob("*.py"))
    assert offending(files, ("storage", "sqlalchemy", "sqlmodel", "bot.channels")) == []


def test_dispatcher_does_not_import_channels_or_storage() -> None:
    assert offending([ROOT / "bot" / "dispatcher.py"], ("bot.channels", "storage", "sqlalchemy", "sqlmodel")) == []


def test_chat_layer_imports_nothing_above_storage_models() -> None:
    files = sorted((ROOT / "bot" / "chat").rglob("*.py"))
    banned = ("bot.services", "bot.channels", "bot.dispatcher", "bot.app", "bot.outbox", "handlers", "storage.repo")
    assert offending(files, banned) == []
    assert all(not n.startswith("bot.") or n.startswith("bot.chat") for f in files for n in imports(f))
