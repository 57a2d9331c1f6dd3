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

# Every candidate notice gets the HR owner's name and the contact the company chose to show.
BASE = {
    "company": COMPANY,
    "candidate_name": "欧阳小明",
    "position": "高级Java后端开发工程师",
    "hr_name": "王芳",
    "hr_contact": "13800001111",
}
SAMPLES: dict[str, dict[str, Any]] = {
    "terminated": {"reason": "候选人网络中断无法继续", "reason_code": "system_failure", "outcome": "需要重新面试"},
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
    "help_contact_hr": {},
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


@pytest.mark.parametrize("kind", ["terminated", "rescheduled", "help_contact_hr"])
def test_sms_that_send_the_candidate_to_hr_say_how_to_reach_them(kind: str) -> None:
    text = Templates().render(f"notices/{kind}.sms.j2", **BASE, **SAMPLES[kind])
    assert "HR王芳 13800001111" in text


async def hr_contact_mail(make_client: AppFactory, clock: FrozenClock, smtp: SmtpServer, **settings: Any) -> str:
    """Terminate 张三's interview (HR 王小姐, mobile and email registered) and return the candidate's email."""
    from bot.keys import CORE
    from storage.models import Person

    client = await make_client(**settings)
    await started_interview(client, clock)
    app = client.server.app
    assert app is not None
    async with app[CORE].sessions() as session:
        session.add(
            Person(
                platform="wecom",
                user_id="hr01",
                name="王小姐",
                role="hr",
                mobile="13900001111",
                email="wang@example.com",
                created_at=clock.now(),
            )
        )
        await session.commit()
    resp = await client.post("/api/interviews/iv-1/terminate", json={"reason": "掉线"}, headers=admin_headers())
    assert resp.status == 200

    async def delivered() -> bool:
        return len(smtp.messages) >= 1

    await eventually(delivered)
    [message] = [m for m in smtp.messages if "已终止" in str(m["Subject"])]
    plain = message.get_body(("plain",))
    assert plain is not None
    return str(plain.get_content())


async def test_notice_names_the_hr_owner_only_by_default(
    make_client: AppFactory, clock: FrozenClock, smtp: SmtpServer
) -> None:
    text = await hr_contact_mail(make_client, clock, smtp)
    assert "张三您好" in text and "感谢您参加「Java后端工程师」岗位的AI面试" in text
    assert "如有任何疑问,欢迎联系您的负责HR 王小姐。" in text
    assert "13900001111" not in text and "wang@example.com" not in text


async def test_notice_shows_the_contact_the_company_chose(
    make_client: AppFactory, clock: FrozenClock, smtp: SmtpServer
) -> None:
    text = await hr_contact_mail(make_client, clock, smtp, notice_hr_contact="both")
    assert "欢迎联系您的负责HR 王小姐(13900001111、wang@example.com)" in text


async def test_company_contact_replaces_the_hr_own(
    make_client: AppFactory, clock: FrozenClock, smtp: SmtpServer
) -> None:
    text = await hr_contact_mail(make_client, clock, smtp, notice_hr_contact="mobile", company_contact="400-800-1234")
    assert "欢迎联系您的负责HR 王小姐(400-800-1234)" in text
    assert "13900001111" not in text


@pytest.mark.parametrize(
    ("answered", "saved_on_platform", "says_saved"),
    [(2, True, True), (0, True, False), (2, False, False)],
)
def test_answers_are_called_kept_only_when_some_exist_and_the_platform_saved_them(
    answered: int, saved_on_platform: bool, says_saved: bool
) -> None:
    context = {**BASE, **SAMPLES["terminated"], "answered": answered, "saved_on_platform": saved_on_platform}
    t = Templates()
    for name in ("notices/terminated.txt.j2", "notices/terminated.html.j2", "notices/terminated.sms.j2"):
        assert ("保存" in t.render(name, **context)) is says_saved, name


@pytest.mark.parametrize(
    ("code", "name", "said"),
    [
        ("candidate_quit", "候选人放弃", "您已主动结束本次AI面试。"),
        ("idle_timeout", "超时未操作", "由于长时间未操作,您的AI面试已超时终止。"),
        ("added_by_admin", "岗位已招满", "您的AI面试已终止,原因是岗位已招满。"),
    ],
)
def test_the_reason_is_said_to_the_candidate(code: str, name: str, said: str) -> None:
    context = {**BASE, "reason": name, "reason_code": code, "outcome": "未完成"}
    text = Templates().render("notices/terminated.txt.j2", **context)
    assert said in text
    assert "候选人" not in text


def test_html_escapes_a_reason_name() -> None:
    context = {**BASE, "reason": "<b>x</b>", "reason_code": "added_by_admin", "outcome": "未完成"}
    html = Templates().render("notices/terminated.html.j2", **context)
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html


@pytest.mark.parametrize("kind", ["terminated", "rescheduled", "help_contact_hr"])
def test_no_contact_no_call_to_contact_hr(kind: str) -> None:
    context = {**BASE, **SAMPLES[kind], "hr_name": "", "hr_contact": ""}
    t = Templates()
    for ext in ("txt", "sms", "html"):
        if t.exists(f"notices/{kind}.{ext}.j2"):
            assert "联系HR" not in t.render(f"notices/{kind}.{ext}.j2", **context), (kind, ext)
