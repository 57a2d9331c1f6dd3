"""What the Docker image does, checked without Docker: the project built as a wheel, installed
without -e into a clean virtual environment, run outside the source tree as a non-root user whose
home is read-only (matplotlib's cache in MPLCONFIGDIR, as the image sets it): `serve` starts,
migrates and answers /healthz and /readyz, and a chart with Chinese labels renders with real glyphs.

Not checked here (no Docker on this machine): the Dockerfile itself, the base image, the apt
packages (fonts-noto-cjk, tzdata), the entrypoint's TZ, the HEALTHCHECK and the compose file.
This machine's CJK font (fonts-noto-cjk, installed by .ci/run as in the Dockerfile) renders the chart.

Slow (it installs every dependency into a new venv, about a minute): it runs in the normal suite.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.services.charts import find_cjk_font

ROOT = Path(__file__).resolve().parents[2]
NOBODY = "nobody"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    """A temp dir another user can enter (pytest's tmp_path is private to this user)."""
    path = Path(tempfile.mkdtemp(prefix="bot-wheel-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run(*cmd: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done  # type: ignore[no-any-return]


CHART = """
import warnings, bot
from datetime import date, timedelta
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from bot.services import charts
warnings.simplefilter("error")  # a missing glyph warns: fail on it
days = [date(2026, 3, 10) - timedelta(days=d) for d in range(6, -1, -1)]
png = charts.render_exit_chart(days, {"系统故障": [1, 0, 2, 0, 0, 1, 3]}, codes={})
assert png.startswith(b"\\x89PNG")
font = FontProperties(fname=charts._installed_cjk_font())
shapes = set()
for ch in "近日退出原因":
    fig = Figure(figsize=(0.6, 0.6), dpi=40)
    canvas = FigureCanvasAgg(fig)
    fig.text(0.5, 0.5, ch, fontproperties=font, size=18, ha="center", va="center")
    canvas.draw()
    shapes.add(bytes(canvas.buffer_rgba()))
assert len(shapes) == 6, len(shapes)  # one shape per character, not the same box for all
print(bot.__file__)
"""


@pytest.mark.timeout(600)
@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX users")
def test_wheel_in_a_clean_venv_serves_as_non_root_with_a_read_only_home(world_readable_dir: Path) -> None:
    if find_cjk_font() is None:
        pytest.skip("no CJK font installed on this machine")
    base = world_readable_dir
    # Built from a copy: setuptools leaves build/ in the tree it builds, and a stale build/lib
    # (a module since deleted) would end up in the next wheel.
    src = base / "src"
    junk = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "data", ".*_cache")
    shutil.copytree(ROOT, src, ignore=junk)
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", base / "dist", src, cwd=base)
    [wheel] = list((base / "dist").glob("interview_exit_bot-*.whl"))
    venv = base / "venv"
    run(_interpreter_for_others(), "-m", "venv", venv)
    run(venv / "bin" / "pip", "install", "-q", wheel, cwd=base)
    size = run("du", "-sm", venv).stdout.split()[0]
    print(f"clean venv with the wheel and its dependencies: {size} MB")  # noqa: T201 - shown with -s

    home = base / "home"  # read-only for everyone
    home.mkdir()
    home.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    work = base / "work"  # the data volume: writable by the service user
    (work / "data").mkdir(parents=True)
    (work / "mpl").mkdir()
    as_root = os.geteuid() == 0
    user: dict[str, object] = {}
    if as_root:
        shutil.chown(work / "data", NOBODY)
        shutil.chown(work / "mpl", NOBODY)
        user = {"user": NOBODY, "group": "nogroup" if _group_exists("nogroup") else NOBODY, "extra_groups": []}
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(home),
        "MPLCONFIGDIR": str(work / "mpl"),
        "BOT_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'data' / 'bot.db'}",
        "BOT_ADMIN_TOKEN": "wheel-test-token",
        "BOT_TIMEZONE": "Asia/Shanghai",
    }
    python = str(venv / "bin" / "python")

    chart = run(python, "-c", CHART, cwd=work, env=env, timeout=120, **user)
    assert chart.stdout.strip().startswith(str(venv)), chart.stdout  # the installed package, not the source tree

    port = free_port()
    log = work / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [python, "-m", "bot", "serve"],
            cwd=work,
            env={**env, "BOT_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
            **user,  # type: ignore[arg-type]
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            assert resp.status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    output = log.read_text()
    assert "database schema is up to date" in output and "Traceback" not in output, output
    assert (work / "data" / "bot.db").exists()
    if as_root:
        assert (work / "data" / "bot.db").stat().st_uid != 0  # written by the service user
    assert list(home.iterdir()) == []  # nothing written to the home


def _interpreter_for_others() -> str:
    """This test's Python, unless the service user could not run it (as root, a Python under
    /root, e.g. pyenv's): then the system's python3 (Debian's 3.11 here)."""
    real = Path(sys.executable).resolve()
    if os.geteuid() != 0 or all(os.stat(p).st_mode & stat.S_IXOTH for p in real.parents):
        return sys.executable
    system = shutil.which("python3", path="/usr/bin:/bin")
    if system is None:
        pytest.skip("no Python the service user can run")
    version = subprocess.run(
        [system, "-c", "import sys; print(sys.version_info >= (3, 11))"], capture_output=True, text=True, check=False
    )
    if version.stdout.strip() != "True":
        pytest.skip(f"{system} is older than Python 3.11")
    return system


def _group_exists(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True
