"""The layering rules of issue 12 this code keeps, checked on the source (so they stay)."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLATFORMS = ("wecom", "dingtalk")


def files(*parts: str) -> list[Path]:
    found: list[Path] = []
    for part in parts:
        path = ROOT / part
        found.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return found


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def code_without_comments_and_docstrings(path: Path) -> str:
    source = path.read_text(encoding="utf-8")
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(first.lineno)
    kept = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT or (tok.type == tokenize.STRING and tok.start[0] in docstrings):
            continue
        kept.append(tok.string)
    return " ".join(kept).lower()


def test_app_cli_services_and_delivery_name_no_platform() -> None:
    named = {
        str(path.relative_to(ROOT)): [p for p in PLATFORMS if p in code_without_comments_and_docstrings(path)]
        for path in files("bot/app.py", "bot/cli.py", "bot/services", "bot/outbox.py", "bot/delivery.py")
    }
    assert {path: found for path, found in named.items() if found} == {}


def test_the_outbox_and_the_delivery_contract_import_no_services_handlers_or_channels() -> None:
    for path in files("bot/outbox.py", "bot/delivery.py"):
        bad = [m for m in imports(path) if m.startswith(("bot.services", "handlers", "bot.channels", "bot.dispatcher"))]
        assert bad == [], path


def test_every_channel_is_in_the_registry_once() -> None:
    from bot.channels import registry

    packages = sorted(p.name for p in (ROOT / "bot/channels").iterdir() if (p / "__init__.py").exists())
    assert sorted(registry.names()) == packages
