"""The chart's Chinese text is drawn with real glyphs, not tofu boxes, whatever matplotlib's font cache
says, and in a regular weight.

What this proves and what it does not: each character is rendered alone with the font the chart
uses, and the bitmaps must differ from one another and no "Glyph … missing" warning may appear. A
font without the glyphs draws every character as the same box (the control below shows it, and
warns). It does not prove the glyphs are the right ones (a font could map every character to a
different wrong shape); the font files chosen are known CJK fonts by name.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from datetime import date, timedelta
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont

from bot.services.charts import CJK_FONT_FILES, find_cjk_font, render_exit_chart

TEXT = "近日退出原因系统故障"
FONT = find_cjk_font()
needs_font = pytest.mark.skipif(FONT is None, reason=f"no CJK font installed (one of {', '.join(CJK_FONT_FILES)})")


def glyphs(text: str, font: FontProperties) -> tuple[list[bytes], list[str]]:
    """Each character's bitmap, and the warnings matplotlib gave while drawing them."""
    out = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for ch in text:
            fig = Figure(figsize=(0.6, 0.6), dpi=40)
            canvas = FigureCanvasAgg(fig)
            fig.text(0.5, 0.5, ch, fontproperties=font, size=18, ha="center", va="center")
            canvas.draw()
            out.append(bytes(canvas.buffer_rgba()))
    return out, [str(w.message) for w in caught]


@needs_font
def test_chinese_text_gets_a_distinct_glyph_per_character() -> None:
    assert FONT is not None
    bitmaps, warned = glyphs(TEXT, FontProperties(fname=FONT))
    assert warned == []
    blank = glyphs(" ", FontProperties(fname=FONT))[0][0]
    assert blank not in bitmaps  # ink was drawn
    assert len(set(bitmaps)) == len(set(TEXT))  # one shape per character, not one box for all


def test_control_a_latin_font_draws_the_same_box_for_every_character() -> None:
    dejavu = FontProperties(fname=findfont("DejaVu Sans"))
    bitmaps, warned = glyphs(TEXT, dejavu)
    assert any("missing from font" in w for w in warned)
    assert len(set(bitmaps)) == 1  # tofu: what the test above tells apart


@needs_font
def test_the_chart_renders_chinese_without_a_missing_glyph() -> None:
    days = [date(2026, 3, 10) - timedelta(days=d) for d in range(6, -1, -1)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a "Glyph … missing" warning fails the test
        series = {"系统故障": [1, 0, 2, 0, 0, 1, 3], "候选人放弃": [0, 1, 0, 0, 0, 0, 1]}
        png = render_exit_chart(days, series, codes={})
    assert png.startswith(b"\x89PNG")


@needs_font
def test_font_is_found_on_disk_when_matplotlibs_cache_predates_it() -> None:
    """matplotlib's font list without any CJK font (a cache built before fonts-noto-cjk was
    installed): the chart still finds and registers the font file."""
    script = (
        "from matplotlib import font_manager\n"
        "from bot.services import charts\n"
        "font_manager.fontManager.ttflist = [f for f in font_manager.fontManager.ttflist "
        "if Path(f.fname).name not in charts.CJK_FONT_FILES]\n"
        "path = charts._installed_cjk_font()\n"
        "assert path is not None\n"
        "assert any(f.fname == path for f in font_manager.fontManager.ttflist)\n"
        "print(path)\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", "from pathlib import Path\n" + script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == FONT


def test_the_regular_weight_is_chosen(tmp_path: Path) -> None:
    for name in ("NotoSansCJK-Bold.ttc", "NotoSansCJK-Light.ttc", "NotoSansCJK-Regular.ttc", "wqy-zenhei.ttc"):
        (tmp_path / "opentype" / "noto").mkdir(parents=True, exist_ok=True)
        (tmp_path / "opentype" / "noto" / name).write_bytes(b"")
    assert find_cjk_font([str(tmp_path)]) == str(tmp_path / "opentype" / "noto" / "NotoSansCJK-Regular.ttc")
    (tmp_path / "opentype" / "noto" / "NotoSansCJK-Regular.ttc").unlink()
    assert find_cjk_font([str(tmp_path)]).endswith("wqy-zenhei.ttc")  # type: ignore[union-attr]
    assert find_cjk_font([str(tmp_path / "nothing-here")]) is None
