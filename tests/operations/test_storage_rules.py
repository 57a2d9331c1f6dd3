"""Storage rules checked on the code: no imports up the layers, commits only where the name says so,
statuses and reasons named by enums and codes rather than literals."""

from __future__ import annotations

import ast
from pathlib import Path

from storage import repo
from storage.seed import DEFAULT_REASONS

ROOT = Path(__file__).resolve().parents[2]


def _modules(*dirs: str) -> list[Path]:
    return [p for d in dirs for p in sorted((ROOT / d).rglob("*.py")) if "migrations" not in p.parts]


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_storage_imports_nothing_from_bot_or_handlers() -> None:
    offending = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in _modules("storage")
        for name in _imported(ast.parse(path.read_text(encoding="utf-8")))
        if name.split(".")[0] in {"bot", "handlers"}
    }
    assert offending == set()


def _commits(fn: ast.AsyncFunctionDef | ast.FunctionDef) -> bool:
    return any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "commit"
        for node in ast.walk(fn)
    )


def test_a_repository_function_commits_exactly_when_its_name_says_so() -> None:
    wrong = []
    for path in _modules("storage/repos"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if _commits(node) != node.name.endswith("_and_commit"):
                    wrong.append(f"{path.name}:{node.name}")
    assert wrong == []


def test_the_facade_offers_every_repository_function() -> None:
    missing = []
    for path in _modules("storage/repos"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            is_fn = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            if is_fn and not node.name.startswith("_") and not hasattr(repo, node.name):
                missing.append(f"{path.name}:{node.name}")
    assert missing == []


def _string_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_code_refers_to_reasons_by_code_never_by_their_editable_name() -> None:
    names = {name for _code, name, _outcome, _synonyms in DEFAULT_REASONS}
    found = {
        f"{path.relative_to(ROOT)}: {text}"
        for path in _modules("bot", "handlers", "storage")
        if path.name != "seed.py"
        for text in _string_literals(path)
        if text in names
    }
    assert found == set()
