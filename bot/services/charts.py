r"""The daily summary's chart: exits by reason per day, a stacked bar PNG.

matplotlib is imported lazily, used through its object API with the Agg canvas (no pyplot, no
global state) and called through ``asyncio.to_thread`` by the summary, so rendering never blocks
the event loop. Chinese labels need a CJK font: BOT_CHART_FONT (a font file) or one installed on
the machine (e.g. the fonts-noto-cjk or fonts-wqy-microhei package), found by its file name on
disk and registered with matplotlib from that file (never from matplotlib's font cache, which may
be older than the font); without one the chart uses the reasons' English codes instead of
printing empty boxes. Text is drawn as plain text (``parse_math`` off on every text artist): a
reason named ``薪资 $8k_$`` or with ``\`` or ``%`` is shown as written, never read as mathtext.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Font files with Chinese glyphs, best first, each in its regular weight (Debian/Ubuntu names:
# fonts-noto-cjk, fonts-wqy-microhei, fonts-wqy-zenhei; the others as their vendors ship them).
CJK_FONT_FILES = (
    "NotoSansCJK-Regular.ttc",
    "NotoSansCJKsc-Regular.otf",
    "NotoSansSC-Regular.otf",
    "NotoSansSC-Regular.ttf",
    "SourceHanSansSC-Regular.otf",
    "wqy-microhei.ttc",
    "wqy-zenhei.ttc",
    "simhei.ttf",
    "msyh.ttc",
)
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")


def find_cjk_font(dirs: Sequence[str] = FONT_DIRS) -> str | None:
    """The first of ``CJK_FONT_FILES`` found under ``dirs``, looked for on disk: matplotlib's font
    list is a cache (in MPLCONFIGDIR) that may predate the font's installation."""
    found: dict[str, str] = {}
    for top in dirs:
        root = Path(top).expanduser()
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.name in CJK_FONT_FILES and path.is_file():
                found.setdefault(path.name, str(path))
    return next((found[name] for name in CJK_FONT_FILES if name in found), None)


@functools.cache
def _installed_cjk_font() -> str | None:
    from matplotlib import font_manager

    path = find_cjk_font()
    if path is not None:
        font_manager.fontManager.addfont(path)  # registered from the file itself, whatever the cache says
        log.info("chart font: %s", path)
    return path


def render_exit_chart(
    days: Sequence[date],
    series: Mapping[str, Sequence[int]],
    *,
    codes: Mapping[str, str],
    font_path: str | None = None,
) -> bytes:
    """PNG bytes: one bar per day, stacked by reason (``series`` maps a reason name to daily counts)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.ticker import MaxNLocator

    font_file = font_path or _installed_cjk_font()
    font: Any = FontProperties(fname=font_file) if font_file else None
    if font_file:
        label, title = dict(zip(series, series, strict=True)), f"近{len(days)}日退出原因"
    else:
        label, title = {name: codes.get(name, "other") for name in series}, f"Exits by reason, last {len(days)} days"

    fig = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = list(range(len(days)))
    bottom = [0] * len(days)
    for name, counts in series.items():
        if not any(counts):
            continue
        ax.bar(x, counts, bottom=bottom, label=label[name])
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    ax.set_xticks(x, [d.strftime("%m-%d") for d in days])
    ax.set_title(title, fontproperties=font, parse_math=False)
    ax.set_ylim(0, max([*bottom, 1]) * 1.15)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if any(bottom):
        for text in ax.legend(prop=font, loc="upper left").get_texts():
            text.set_parse_math(False)  # a reason's name is text, whatever ``$`` it holds
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
