"""The layering rules of docs/ARCHITECTURE.md, checked on the code's imports and names, so they stay."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLATFORMS = re.compile(r"wecom|dingtalk|feishu|lark", re.IGNORECASE)
CJK = re.compile(r"[\u4e00-\u9fff]")
MAX_CHAT_LITERALS = 8  # command words matched in code (确认, 取消, 帮助, 今天/本周/本月)


def files(*parts: str) -> list[Path]:
    out: list[Path] = []
    for part in parts:
        path = ROOT / part
        out.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return [p for p in out if p.exists() and "migrations" not in p.parts]


def imports(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def offenders(paths: list[Path], banned: tuple[str, ...]) -> list[str]:
    found = []
    for path in paths:
        for name in imports(path):
            if any(name == b or name.startswith(b + ".") for b in banned):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return sorted(set(found))


def docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


DELIVERY = ("bot/outbox.py", "bot/delivery")
NEUTRAL_USERS = ("bot/services", "bot/dispatcher.py", "handlers", "storage", *DELIVERY)


def test_nothing_below_the_channels_imports_them() -> None:
    assert offenders(files(*NEUTRAL_USERS), ("bot.channels",)) == []


def test_delivery_code_imports_no_services_or_handlers() -> None:
    assert offenders(files(*DELIVERY), ("bot.services", "handlers", "bot.dispatcher")) == []


def test_handlers_reach_data_only_through_services() -> None:
    assert offenders(files("handlers"), ("storage", "sqlalchemy", "sqlmodel")) == []


def test_console_pages_reach_data_only_through_services() -> None:
    """The web console (bot/console) is a web layer: services only, no ORM, no chat handlers or channels."""
    banned = ("storage", "sqlalchemy", "sqlmodel", "handlers", "bot.channels", "bot.dispatcher")
    found = offenders(files("bot/console"), banned)
    # Like the app and the CLI, it may learn which channels exist (platform names, features) from the registry.
    # (``from bot.channels import registry`` names the package too.)
    allowed = {"bot.channels.registry", "bot.channels"}
    assert files("bot/console") and [f for f in found if f.split(" imports ")[1] not in allowed] == []
    assert not [
        f
        for f in found
        if f.endswith(" bot.channels") and f.replace(" bot.channels", " bot.channels.registry") not in found
    ]


def test_storage_imports_nothing_above_it() -> None:
    assert offenders(files("storage"), ("bot", "handlers")) == []


def test_channels_use_no_orm_and_no_handlers() -> None:
    assert offenders(files("bot/channels"), ("sqlalchemy", "sqlmodel", "handlers")) == []


def test_channels_reach_storage_only_through_the_intake_and_services() -> None:
    """A channel parses and replies: it stores messages through ``bot.intake`` and reads or writes
    anything else through ``bot.services`` (tokens, sign bindings, kf links, people). It may name
    ``storage.models`` row types (the outbox rows its senders take, the extra rows it stores with a
    message) and, from ``storage.db``, only the ``SessionMaker`` type it hands to those services."""
    banned = ("storage.repo", "storage.repos", "sqlalchemy", "sqlmodel")
    assert offenders(files("bot/channels"), banned) == []
    db_names = [f for f in offenders(files("bot/channels"), ("storage.db",)) if not f.endswith(" storage.db")]
    assert [f for f in db_names if not f.endswith(" storage.db.SessionMaker")] == []


def test_app_cli_services_and_delivery_name_no_platform() -> None:
    found = []
    for path in files("bot/app.py", "bot/cli.py", "bot/services", *DELIVERY):
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        doc_ids = docstring_nodes(tree)
        docs = {(n.lineno, n.col_offset) for n in ast.walk(tree) if id(n) in doc_ids}
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.STRING and tok.start in docs:
                continue
            if tok.type in (tokenize.NAME, tokenize.STRING) and PLATFORMS.search(tok.string):
                found.append(f"{path.relative_to(ROOT)}:{tok.start[0]} {tok.string[:40]}")
    assert found == []


def decorator_nodes(tree: ast.AST) -> set[int]:
    """Constants in decorators: command names, usage and examples (allowed to stay in code)."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for deco in node.decorator_list:
                ids.update(id(n) for n in ast.walk(deco))
    return ids


def test_chat_text_lives_in_templates() -> None:
    literals = []
    for path in files("handlers", "bot/dispatcher.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = docstring_nodes(tree) | decorator_nodes(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                if CJK.search(node.value):
                    literals.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value[:20]}")
    assert len(literals) <= MAX_CHAT_LITERALS, "\n".join(literals)


# Services whose refusals are shown to people (chat, console, admin API): their text is in
# templates/services/refusals.txt.j2, none in the code.
REFUSING_SERVICES = ("bot/services/termination.py", "bot/services/scheduling.py", "bot/services/console_auth.py")


def test_refusal_text_lives_in_templates() -> None:
    literals = []
    for name in REFUSING_SERVICES:
        path = ROOT / name
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = docstring_nodes(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                if CJK.search(node.value):
                    literals.append(f"{name}:{node.lineno} {node.value[:20]}")
    assert literals == []


def test_every_channel_has_its_chinese_names() -> None:
    """The checklist's labels: a channel's name and what a person's id is called on it."""
    from bot.channels import registry
    from templates.labels import LABELS

    missing = [
        f"{group}:{name}" for name in registry.names() for group in ("channel", "account") if name not in LABELS[group]
    ]
    assert missing == []


def test_language_layer_imports_no_handlers_channels_storage_or_dispatcher() -> None:
    banned = ("handlers", "bot.channels", "storage", "bot.dispatcher", "sqlalchemy", "sqlmodel")
    assert offenders(files("bot/language"), banned) == []


def imported_test_modules(path: Path, package: str | None = None) -> list[str]:
    """The test modules (``tests.test_*``, ``tests.<folder>.test_*``) that ``path`` imports, absolutely or
    relatively; ``package`` is the one ``path`` is in (by default, from where it lies in the repository)."""
    if package is None:
        package = ".".join(path.relative_to(ROOT).parent.parts)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            # ``from .x`` is package.x, ``from ..x`` the package's parent's x, …
            base = package.split(".")[: len(package.split(".")) + 1 - node.level] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found += [n for n in names if re.fullmatch(r"tests(\.(?!test_)\w+)*\.test_\w+", n)]
    return sorted(set(found))


def test_no_test_module_imports_another(tmp_path: Path) -> None:
    """Helpers two test modules share live in a support module (tests/chat.py, tests/serve.py, …), so a
    newcomer finds them by name and a test module can be moved or deleted alone."""
    modules = files("tests")
    found = {str(path.relative_to(ROOT)): names for path in modules if (names := imported_test_modules(path))}
    assert found == {}
    # every folder's test modules are read (the suite is in folders by layer: tests/README.md)
    folders = {path.parent.name for path in modules if path.name.startswith("test_")}
    assert {"channels", "intake", "services", "language", "handlers", "web", "operations", "e2e"} <= folders
    # the check sees each way of writing such an import, from any folder, and not a support module's
    probe = tmp_path / "test_probe.py"
    probe.write_text(
        "from tests.test_cli import x\n"
        "import tests.operations.test_cli\n"
        "from tests.channels import test_sms\n"
        "from .test_summary import y\n"
        "from . import test_lifecycle\n"
        "from ..channels.test_wecom_kf import z\n"
        "from tests.chat import ChatUser\n"
        "from tests.language.world import World\n"
        "from ..fakes import smtp\n"
    )
    assert imported_test_modules(probe, package="tests.services") == [
        "tests.channels.test_sms",
        "tests.channels.test_wecom_kf",
        "tests.operations.test_cli",
        "tests.services.test_lifecycle",
        "tests.services.test_summary",
        "tests.test_cli",
    ]
