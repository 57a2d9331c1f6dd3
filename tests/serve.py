"""The real service as a subprocess (``python -m bot serve``), for tests of what an admin runs and reads."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
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


class Service:
    """One ``python -m bot serve`` on ``port`` (a free one unless given), its output appended to ``log``.

    ``healthy`` waits until /healthz answers; ``kill9`` ends it with SIGKILL (no shutdown code runs);
    ``stop`` ends it with a signal (SIGINT, Ctrl-C, unless told), killing it if it does not exit."""

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        *,
        port: int | None = None,
        instance: str | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.port = free_port() if port is None else port
        self.log = log
        extra = {"BOT_PORT": str(self.port)} | ({"BOT_INSTANCE_ID": instance} if instance else {})
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"],
                env={**env, **extra},
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
            )
        self.url = f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    async def healthy(self, timeout: float = 40, interval: float = 0.05) -> None:
        """Until /healthz answers 200; fails with the service's output if it exits first."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
            while True:
                assert self.proc.poll() is None, self.output()
                try:
                    async with http.get(f"{self.url}/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, "the service did not start"
                await asyncio.sleep(interval)

    def kill9(self) -> None:
        self.proc.kill()  # SIGKILL: no shutdown code runs
        self.proc.wait(timeout=10)

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)  # frozen: holds its leases and connections, does nothing

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self, sig: signal.Signals = signal.SIGINT) -> None:
        stop_all([self], sig)


def stop_all(services: Iterable[Service], sig: signal.Signals = signal.SIGINT, timeout: float = 10) -> None:
    """Signal every service still running (resumed first if paused), then wait for each; kill one
    that has not exited within ``timeout`` seconds."""
    services = list(services)
    for service in services:
        if service.proc.poll() is None:
            service.proc.send_signal(signal.SIGCONT)
            service.proc.send_signal(sig)
    for service in services:
        try:
            service.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            service.proc.kill()
            service.proc.wait()


@asynccontextmanager
async def running_service(env: dict[str, str], workdir: Path) -> AsyncIterator[Service]:
    """Start the service in ``workdir``, wait until /healthz answers, stop it with Ctrl-C (SIGINT) afterwards."""
    log = workdir / "serve.log"
    log.write_bytes(b"")  # this run's output only
    service = Service(env, log, cwd=workdir)
    try:
        await service.healthy(interval=0.1)
        yield service
    finally:
        service.proc.send_signal(signal.SIGINT)
        service.proc.wait(timeout=30)


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
