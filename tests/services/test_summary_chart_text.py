"""Chart text is plain text and a chart never stops a summary (issue 22).

Reasons named with ``$…$``, ``\\`` and ``%`` are drawn as written (matplotlib would read ``$8k_$`` as
mathtext and fail) with a real font file, the daily summary goes to a group robot with the chart
as an image, and the console's 统计 chart answers a PNG. A font file that is no font (a real
condition an operator can cause with BOT_CHART_FONT) makes the chart impossible: the summary still
goes, without the image, the log says why, and the 统计 chart answers 503 with the console's
security headers, never a bare 500.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from matplotlib.font_manager import findfont

from bot.clock import FrozenClock
from bot.console.web import SECURITY_HEADERS
from bot.services import reasons
from bot.services.summary import send_daily_summary
from storage.models import Pipeline
from tests.chat import add_person
from tests.conftest import SHANGHAI, AppFactory, admin_headers, eventually, started_interview
from tests.console import signed_in
from tests.fakes.wecom_api import FakeWeCom
from tests.sched import core_of

ODD_REASONS = ("薪资要求 $8k_$", "面试题\\太难", "通过率 50%", "$\\frac{$")


async def summary_app(make_client: AppFactory, fake_wecom: FakeWeCom, font: str) -> TestClient:
    """A group robot that takes the chart as an image, the chart font ``font``, and a manager."""
    client = await make_client(wecom_robot_key=fake_wecom.robot_key, wecom_api_base=fake_wecom.base, chart_font=font)
    assert client.server.app is not None
    await add_person(client.server.app, "mgr1", "周经理", "manager")
    return client


async def exits_with_odd_reasons(client: TestClient, clock: FrozenClock) -> None:
    core = core_of(client)
    for n, name in enumerate(ODD_REASONS, start=1):
        await reasons.add(core, name=name, outcome=Pipeline.incomplete.value, actor="test", source="test")
        await started_interview(client, clock, f"iv-{n}")
        resp = await client.post(f"/api/interviews/iv-{n}/terminate", json={"reason": name}, headers=admin_headers())
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["exit"]["reason"] == name


async def robot_posts(fake_wecom: FakeWeCom, *msgtypes: str) -> dict[str, dict[str, object]]:
    async def posted() -> bool:
        return {m["msgtype"] for m in fake_wecom.sent("webhook/send")} >= set(msgtypes)

    await eventually(posted)
    return {m["msgtype"]: m for m in fake_wecom.sent("webhook/send")}


# DejaVu Sans (matplotlib's own font, a real file) has no Chinese glyphs: matplotlib warns and
# draws boxes for them; what matters here is that ``$`` ``\\`` ``%`` are drawn and nothing fails.
@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
async def test_reasons_with_dollars_backslashes_and_percents_are_drawn_and_the_summary_goes(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    client = await summary_app(make_client, fake_wecom, findfont("DejaVu Sans"))
    await exits_with_odd_reasons(client, clock)
    day = clock.now().astimezone(SHANGHAI).date()
    outcome = await send_daily_summary(core_of(client), day=day)
    assert outcome.sent == ["robot:wecom_robot"]

    posts = await robot_posts(fake_wecom, "markdown", "image")
    image = posts["image"]["image"]
    assert isinstance(image, dict)
    assert base64.b64decode(image["base64"]).startswith(b"\x89PNG\r\n\x1a\n")
    markdown = posts["markdown"]["markdown"]
    assert isinstance(markdown, dict)
    assert "薪资要求 $8k_$" in markdown["content"] and "通过率 50%" in markdown["content"]

    await signed_in(client, "mgr1")
    chart = await client.get("/console/stats/chart.png", params={"period": "today"})
    assert chart.status == 200 and chart.content_type == "image/png"
    assert (await chart.read()).startswith(b"\x89PNG")


async def test_a_chart_that_cannot_be_drawn_never_stops_the_summary(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "NotoSansCJK-Regular.ttc"
    broken.write_bytes(b"not a font at all\n" * 64)  # e.g. a download that stopped half way
    client = await summary_app(make_client, fake_wecom, str(broken))
    await exits_with_odd_reasons(client, clock)
    day = clock.now().astimezone(SHANGHAI).date()
    with caplog.at_level(logging.ERROR, logger="bot.services.summary"):
        outcome = await send_daily_summary(core_of(client), day=day)
    assert outcome.sent == ["robot:wecom_robot"]
    assert any("the chart could not be drawn; sending the summary without it" in r.getMessage() for r in caplog.records)

    posts = await robot_posts(fake_wecom, "markdown")
    assert "image" not in posts
    markdown = posts["markdown"]["markdown"]
    assert isinstance(markdown, dict) and f"{day} 面试退出日报" in markdown["content"]

    await signed_in(client, "mgr1")
    chart = await client.get("/console/stats/chart.png", params={"period": "today"})
    assert chart.status == 503
    assert "统计图暂时无法生成" in await chart.text()
    for header, value in SECURITY_HEADERS.items():
        assert chart.headers[header] == value
    page = await client.get("/console/stats", params={"period": "today"})
    assert page.status == 200 and "薪资要求 $8k_$" in await page.text()  # the numbers are unaffected
