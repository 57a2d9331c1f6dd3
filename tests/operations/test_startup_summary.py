"""The start-up summary says in plain words what an unset setting means for people."""

from __future__ import annotations

from bot.channels import registry
from tests.conftest import make_settings


def test_without_a_platform_terminations_are_said_to_be_recorded_here_only() -> None:
    summary = registry.startup_summary(make_settings("sqlite+aiosqlite:///unused.db"))
    assert (
        "platform calls: off (PLATFORM_API_BASE not set): terminations are recorded here only,"
        " the interview on the platform is not touched and no answers are saved"
    ) in summary
    assert "\n" not in summary


def test_with_a_platform_no_such_line() -> None:
    settings = make_settings("sqlite+aiosqlite:///unused.db", platform_api_base="https://platform.example.com/api")
    assert "recorded here only" not in registry.startup_summary(settings)
    assert not any(w.startswith("platform calls") for w in registry.startup_warnings(settings))


def test_no_contact_for_candidates_is_warned_until_one_is_set() -> None:
    unset = make_settings("sqlite+aiosqlite:///unused.db")
    assert "candidate contact: none (BOT_COMPANY_CONTACT not set" in registry.startup_summary(unset)
    hotline = make_settings("sqlite+aiosqlite:///unused.db", company_contact="400-800-1234")
    assert "candidate contact" not in registry.startup_summary(hotline)
    own = make_settings("sqlite+aiosqlite:///unused.db", notice_hr_contact="mobile")
    assert "candidate contact" not in registry.startup_summary(own)
