"""Chat text lives in templates/: few Chinese string literals remain in handlers/ and the dispatcher.

Counted on the code itself (ast): string constants holding CJK characters, docstrings aside, and
command names aside (the first arguments of ``router.command(...)``), which may stay in code.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
LIMIT = 40


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _command_names(trees: list[ast.AST]) -> set[str]:
    names = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "command":
                names |= {a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return names


def chinese_literals() -> list[str]:
    files = [*sorted((ROOT / "handlers").glob("*.py")), ROOT / "bot" / "dispatcher.py"]
    trees = [ast.parse(f.read_text(encoding="utf-8")) for f in files]
    commands = _command_names(trees)
    out = []
    for path, tree in zip(files, trees, strict=True):
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docs
                and node.value not in commands
                and CJK.search(node.value)
            ):
                out.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    return out


def test_chat_text_is_in_templates() -> None:
    found = chinese_literals()
    assert len(found) <= LIMIT, "\n".join(found)
