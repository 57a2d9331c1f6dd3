"""The daily summary's chart: exits by reason per day, a stacked bar PNG.

matplotlib is imported lazily, used through its object API with the Agg canvas (no pyplot, no
global state) and called through ``asyncio.to_thread`` by the summary, so rendering never blocks
the event loop. Chinese labels need a CJK font: BOT_CHART_FONT (a font file) or one installed on
the machine (e.g. the fonts-noto-cjk or fonts-wqy-microhei package); without one the chart uses
the reasons' English codes instead of printing empty boxes.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

log = logging.getLogger(__name__)

CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
)


@functools.cache
def _installed_cjk_font() -> str | None:
    from matplotlib import font_manager

    installed = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    return next((installed[name] for name in CJK_FAMILIES if name in installed), None)


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
    ax.set_title(title, fontproperties=font)
    ax.set_ylim(0, max([*bottom, 1]) * 1.15)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if any(bottom):
        ax.legend(prop=font, loc="upper left")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
