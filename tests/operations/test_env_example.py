""".env.example documents every setting, each with a comment, and its defaults are the real ones."""

from __future__ import annotations

import ipaddress
import itertools
import re
from pathlib import Path

import pytest
import yaml

from bot.channels.registry import AppSettings as Settings
from tests.conftest import make_settings

EXAMPLE = Path(__file__).parents[2] / ".env.example"
COMPOSE = Path(__file__).parents[2] / "deploy" / "docker-compose.yml"
# Read by deploy/docker-compose.yml only, not by the service: documented beside the settings.
DEPLOY_ONLY = {"POSTGRES_PASSWORD"}
CJK = re.compile(r"[\u4e00-\u9fff]")
SETTING = re.compile(r"# ([A-Z][A-Z0-9_]*)=(.*)")


def documented() -> dict[str, tuple[str, str]]:
    """name -> (example value, the comment line above it)."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    found: dict[str, tuple[str, str]] = {}
    for above, line in itertools.pairwise(lines):
        if m := SETTING.fullmatch(line):
            assert m.group(1) not in found, f"{m.group(1)} twice"
            found[m.group(1)] = (m.group(2), above)
    return found


def test_every_setting_is_in_env_example_with_a_comment() -> None:
    names = {str(field.validation_alias) for field in Settings.model_fields.values()}
    found = documented()
    assert sorted(names - set(found)) == [], "add these to .env.example"
    assert sorted(set(found) - names - DEPLOY_ONLY) == [], "not settings (renamed?)"
    for name, (_, comment) in found.items():
        assert comment.startswith("# ") and not SETTING.fullmatch(comment) and len(comment) > 6, name


def test_env_example_speaks_to_its_chinese_readers() -> None:
    """Every comment line is Chinese (the admins filling it in read Chinese); the names stay English."""
    comments = [
        line
        for line in EXAMPLE.read_text(encoding="utf-8").splitlines()
        if line.startswith("#") and not SETTING.fullmatch(line)
    ]
    english = [line for line in comments if not CJK.search(line) and not line.lstrip("# ").startswith(("http", "#"))]
    assert len(comments) > 100 and english == []


def test_compose_requires_the_database_password_documented_in_env_example() -> None:
    compose = COMPOSE.read_text(encoding="utf-8")
    assert "POSTGRES_PASSWORD" in documented()
    uses = re.findall(r"\$\{POSTGRES_PASSWORD([^}]*)\}", compose)
    assert len(uses) == 2 and all(use.startswith(":?") for use in uses), uses  # no silent default password


def test_compose_replicas_trust_the_proxy_in_front_of_them_and_nothing_else() -> None:
    """Behind Caddy every request comes from the proxy: the replicas must read X-Forwarded-For from
    its fixed address (console login throttling counts per client), and from no other peer."""
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    proxy = ipaddress.ip_address(compose["services"]["proxy"]["networks"]["default"]["ipv4_address"])
    [subnet] = [ipaddress.ip_network(c["subnet"]) for c in compose["networks"]["default"]["ipam"]["config"]]
    assert proxy in subnet
    replicas = [s for s in compose["services"].values() if s.get("image") == "interview-exit-bot:local"]
    assert len(replicas) == 2
    for service in replicas:
        trusted = make_settings(
            "sqlite+aiosqlite:///:memory:", trusted_proxies=service["environment"]["BOT_TRUSTED_PROXIES"]
        )
        assert trusted.trusted_proxies == str(proxy)


def test_uncommenting_env_example_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for field in Settings.model_fields.values():
        monkeypatch.delenv(str(field.validation_alias), raising=False)
    env = tmp_path / ".env"
    env.write_text("".join(f"{k}={v}\n" for k, (v, _) in documented().items() if v), encoding="utf-8")
    assert Settings(_env_file=env).model_dump() == Settings(_env_file=None).model_dump()  # type: ignore[call-arg]
