"""Tests never read a `.env` they did not write (BOT_ENV_FILE="" from tests/conftest.py), while the
service still reads `.env` by default and the file BOT_ENV_FILE names otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.channels import registry
from tests.conftest import make_settings
from tests.fakes.smtp import SmtpServer
from tests.serve import run_cli_on

REPO = Path(__file__).parents[2]
SAVED = REPO / ".env.saved-by-tests"


@pytest.fixture
def checkout_env_file(smtp: SmtpServer) -> Iterator[Path]:
    """A `.env` in the checkout (where pytest and the CLI tests run) with the SMTP settings a
    developer fills in after the README's first step; a developer's own `.env` is put aside
    and restored afterwards."""
    env = REPO / ".env"
    assert not SAVED.exists(), f"{SAVED} is left from an interrupted run: rename it back to .env"
    if env.exists():
        env.rename(SAVED)
    env.write_text(
        f"SMTP_HOST=127.0.0.1\nSMTP_PORT={smtp.port}\nSMTP_FROM=dev-env@example.com\nBOT_COMPANY_NAME=开发者的公司\n",
        encoding="utf-8",
    )
    try:
        yield env
    finally:
        env.unlink()
        if SAVED.exists():
            SAVED.rename(env)


async def test_cli_in_tests_ignores_the_checkout_env_file(clean_db: str, checkout_env_file: Path) -> None:
    assert Path.cwd() == REPO  # the CLI helpers run in the checkout, where the file is
    code, out, err = await run_cli_on(clean_db, "notice", "test", "--to-email", "a@example.com", "--wait", "1")
    assert code == 2, out + err  # refused at once: email is off, nothing queued, no wait
    assert "SMTP_HOST" in err and "已加入发件箱" not in out


async def test_the_cli_reads_env_by_default_and_not_when_bot_env_file_is_empty(
    clean_db: str, checkout_env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: the same command without the tests' BOT_ENV_FILE="" does read the file."""
    monkeypatch.delenv(registry.ENV_FILE_VARIABLE)
    code, out, err = await run_cli_on(clean_db, "notice", "test", "--to-email", "a@example.com", "--wait", "0.2")
    assert "已加入发件箱(邮件 → a@example.com)" in out, out + err
    assert code == 1  # queued; no service runs here to send it

    monkeypatch.setenv(registry.ENV_FILE_VARIABLE, "")
    code, _, err = await run_cli_on(clean_db, "notice", "test", "--to-email", "a@example.com", "--wait", "0.2")
    assert code == 2 and "SMTP_HOST" in err


def test_settings_in_tests_ignore_the_checkout_env_file(checkout_env_file: Path) -> None:
    assert registry.env_file() is None
    loaded = registry.load_settings()
    assert (loaded.smtp_host, loaded.company_name) == (None, "招聘团队")
    assert make_settings("sqlite+aiosqlite://").smtp_host is None


def test_bot_env_file_names_the_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "bot.env"
    elsewhere.write_text("BOT_COMPANY_NAME=别处的公司\n", encoding="utf-8")
    monkeypatch.delenv("BOT_COMPANY_NAME", raising=False)
    monkeypatch.setenv(registry.ENV_FILE_VARIABLE, str(elsewhere))
    assert registry.load_settings().company_name == "别处的公司"
    monkeypatch.delenv(registry.ENV_FILE_VARIABLE)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("BOT_COMPANY_NAME=当前目录的公司\n", encoding="utf-8")
    assert registry.env_file() == ".env"
    assert registry.load_settings().company_name == "当前目录的公司"
