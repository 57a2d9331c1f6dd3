"""Candidate notice templates: every kind has an email subject and body and an SMS variant that
fits one 70-character segment with realistic data; BOT_TEMPLATE_DIR overrides a single file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jinja2 import UndefinedError

from bot.clock import FrozenClock
from bot.settings import CANDIDATE_NOTICE_KINDS
from bot.templating import Templates
from tests.conftest import AppFactory, admin_headers, eventually, started_interview
from tests.fakes.smtp import SmtpServer

SMS_SEGMENT = 70
COMPANY = "测试科技有限公司"

BASE = {"company": COMPANY, "candidate_name": "欧阳小明", "position": "高级Java后端开发工程师"}
SAMPLES: dict[str, dict[str, Any]] = {
    "terminated": {
        "reason": "候选人网络中断无法继续",
        "reason_code": "system_failure",
        "outcome": "需要重新面试",
        "hr_name": "王芳",
    },
    "rescheduled": {
        "start_text": "2026-11-26 14:00",
        "old_text": "2026-11-25 10:00",
        "join_url": "https://interview.example.com/j/iv-1",
        "answered": 3,
    },
    "guide": {"start_text": "2026-11-26 14:00", "join_url": "https://interview.example.com/j/iv-1"},
    "before_1h": {"start_text": "2026-11-26 14:00", "join_url": "https://interview.example.com/j/iv-1"},
    "at_start": {"start_text": "2026-11-26 14:00", "join_url": "https://interview.example.com/j/iv-1"},
    "after_30m": {},
    "idle_warning": {"idle_minutes": 5, "remaining_minutes": 5},
    "help_contact_hr": {"hr_name": "王芳"},
}


def test_samples_cover_every_candidate_kind() -> None:
    assert set(SAMPLES) == set(CANDIDATE_NOTICE_KINDS)


@pytest.mark.parametrize("kind", CANDIDATE_NOTICE_KINDS)
def test_sms_variant_fits_one_segment(kind: str) -> None:
    text = Templates().render(f"notices/{kind}.sms.j2", **BASE, **SAMPLES[kind])
    signed = f"【{COMPANY}】{text}"  # providers prepend the signature, and it counts
    assert "\n" not in text
    assert len(signed) <= SMS_SEGMENT, (len(signed), signed)
    assert BASE["candidate_name"] in text


@pytest.mark.parametrize("kind", CANDIDATE_NOTICE_KINDS)
def test_email_subject_and_body_render(kind: str) -> None:
    t = Templates()
    subject = t.render(f"notices/{kind}.subject.j2", **BASE, **SAMPLES[kind])
    body = t.render(f"notices/{kind}.txt.j2", **BASE, **SAMPLES[kind])
    assert subject and "\n" not in subject
    assert BASE["candidate_name"] in body and COMPANY in body


@pytest.mark.parametrize("kind", CANDIDATE_NOTICE_KINDS)
def test_missing_variable_fails_loudly(kind: str) -> None:
    with pytest.raises(UndefinedError):
        Templates().render(f"notices/{kind}.sms.j2", company=COMPANY, position="x")


def test_override_directory_replaces_one_template(tmp_path: Path) -> None:
    (tmp_path / "notices").mkdir()
    (tmp_path / "notices" / "terminated.sms.j2").write_text("{{ candidate_name }}:面试已结束。", encoding="utf-8")
    t = Templates(tmp_path)
    assert t.render("notices/terminated.sms.j2", **BASE, **SAMPLES["terminated"]) == "欧阳小明:面试已结束。"
    # Everything else still comes from the package.
    assert "欧阳小明" in t.render("notices/rescheduled.sms.j2", **BASE, **SAMPLES["rescheduled"])


async def test_override_directory_reaches_the_candidate(
    make_client: AppFactory, clock: FrozenClock, smtp: SmtpServer, tmp_path: Path
) -> None:
    (tmp_path / "notices").mkdir()
    (tmp_path / "notices" / "terminated.txt.j2").write_text(
        "{{ candidate_name }},本公司定制的终止通知:{{ reason }}。\n{{ company }}", encoding="utf-8"
    )
    client = await make_client(template_dir=str(tmp_path))
    await started_interview(client, clock)
    resp = await client.post("/api/interviews/iv-1/terminate", json={"reason": "候选人放弃"}, headers=admin_headers())
    assert resp.status == 200

    async def delivered() -> bool:
        return len(smtp.messages) == 1

    await eventually(delivered)
    message = smtp.messages[0]
    plain = message.get_body(("plain",))
    assert plain is not None
    assert "张三,本公司定制的终止通知:候选人放弃。" in plain.get_content()
    assert message["Subject"]  # the subject still comes from the package
