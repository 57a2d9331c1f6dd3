"""The real service as a subprocess (``python -m bot serve``), for tests of what an admin runs and reads."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.conftest import ADMIN_TOKEN, NO_ENV_FILE, PLATFORM_SECRET
from tests.fakes.smtp import SmtpServer, free_port


def service_env(database_url: str, smtp: SmtpServer | None = None, **extra: str) -> dict[str, str]:
    """This process's environment without any bot setting, plus the test database and ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BOT_", "SMTP_", "WECOM_", "DINGTALK_", "FEISHU_", "SMS_"))
    }
    env.update(NO_ENV_FILE)
    env.update(BOT_DATABASE_URL=database_url, BOT_ADMIN_TOKEN=ADMIN_TOKEN, PLATFORM_WEBHOOK_SECRET=PLATFORM_SECRET)
    if smtp is not None:
        env.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp.port), SMTP_FROM="hr-bot@example.com")
    env.update(extra)
    return env


@dataclass
class Service:
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8")


@asynccontextmanager
async def running_service(env: dict[str, str], workdir: Path) -> AsyncIterator[Service]:
    """Start the service, wait until /healthz answers, stop it with Ctrl-C (SIGINT) afterwards."""
    port = free_port()
    log = workdir / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"],
            env={**env, "BOT_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    service = Service(f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 40
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
            while True:
                assert proc.poll() is None, service.output()
                try:
                    async with http.get(f"{service.url}/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, "the service did not start"
                await asyncio.sleep(0.1)
        yield service
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


async def run_cli(env: dict[str, str], *args: str, stdin: str = "", cwd: Path | None = None) -> tuple[int, str, str]:
    """``python -m bot <args>`` with ``env`` (and ``stdin`` typed in): its exit code, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def run_cli_on(
    database_url: str, *args: str, stdin: str = "", extra: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """The command line against ``database_url`` with this process's environment (plus ``extra``)."""
    return await run_cli({**os.environ, "BOT_DATABASE_URL": database_url, **(extra or {})}, *args, stdin=stdin)


async def wait_healthy(ports: list[int], deadline: float) -> None:
    """Until the service on each port answers /healthz (by ``deadline``, a ``time.monotonic()`` value)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
        for port in ports:
            while True:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, f"service on port {port} did not start"
                await asyncio.sleep(0.1)
