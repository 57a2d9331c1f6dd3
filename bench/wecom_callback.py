"""Benchmark: ack latency of POST /wecom/callback under load, beside a bare reference handler.

    python bench/wecom_callback.py [-n 2000] [-c 32]

A child process (pinned to one CPU where the OS allows) serves, on 127.0.0.1 only:
- the real app (SQLite in a temp dir, full path: verify, decrypt, parse, claim + store, ack,
  then dispatcher and replies in the background, sent to a fake WeCom API in the same process);
- a reference app that only verifies, decrypts and stores the message id (same crypto, same
  kind of SQLite database), and acks.
This process fires encrypted text callbacks with bounded concurrency at each and prints
throughput and p50/p99 ack latency. Everything stops by itself (hard limit: 5 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

HARD_LIMIT_SECONDS = 300
# Senders spread over many HR people, as in real use (WeCom allows 30 app messages/min per member).
USERS = 100


# --- server side (child process) -------------------------------------------------------


async def _serve(tmp: str, ports: Any, stop: Any) -> None:
    import logging

    from bot.app import create_app
    from bot.channels.registry import AppSettings as Settings
    from bot.channels.wecom.crypto import CallbackCrypto, CallbackError
    from bot.channels.wecom.parse import parse_app_xml
    from bot.keys import CORE
    from storage import repo
    from storage.db import create_engine, migrate, session_maker
    from storage.models import Person
    from tests.fakes.wecom_api import AES_KEY, CORP_ID, FakeWeCom, wecom_settings

    logging.basicConfig(level=logging.ERROR)
    fake = FakeWeCom()
    await fake.start()

    # The full app.
    url = f"sqlite+aiosqlite:///{tmp}/bot.db"
    await asyncio.to_thread(migrate, url)
    settings = Settings(_env_file=None, database_url=url, **wecom_settings(fake))  # type: ignore[call-arg]
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    core = app[CORE]
    async with core.sessions() as session:
        for u in range(USERS):
            session.add(
                Person(platform="wecom", user_id=f"hr{u:03d}", name=f"压测{u}", role="hr", created_at=core.clock.now())
            )
        await session.commit()

    # The reference: verify + decrypt + store the message id, nothing else.
    ref_url = f"sqlite+aiosqlite:///{tmp}/ref.db"
    await asyncio.to_thread(migrate, ref_url)
    ref_engine = create_engine(ref_url)
    ref_sessions = session_maker(ref_engine)
    crypto = CallbackCrypto(settings.wecom_token.get_secret_value(), AES_KEY, CORP_ID)  # type: ignore[union-attr]

    async def reference(request: web.Request) -> web.Response:
        q = request.query
        try:
            plain = crypto.decrypt_xml(await request.read(), q["msg_signature"], q["timestamp"], q["nonce"])
            inbound = parse_app_xml(plain)
        except (CallbackError, KeyError):
            return web.Response(status=401)
        if inbound is not None:
            async with ref_sessions() as session:
                await repo.claim_inbound_and_commit(
                    session, platform="wecom", dedupe_key=inbound.dedupe_key, now=core.clock.now()
                )
        return web.Response(text="")

    ref_app = web.Application()
    ref_app.router.add_post("/wecom/callback", reference)
    ref_runner = web.AppRunner(ref_app, access_log=None)
    await ref_runner.setup()
    ref_site = web.TCPSite(ref_runner, "127.0.0.1", 0)
    await ref_site.start()

    def port(s: web.TCPSite) -> int:
        server = s._server
        assert server is not None
        return int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    ports.put((port(site), port(ref_site)))
    await asyncio.to_thread(stop.wait)
    sent = len(fake.sent("message/send"))
    await ref_runner.cleanup()
    await ref_engine.dispose()
    await runner.cleanup()
    await fake.close()
    ports.put(sent)


def _server_main(tmp: str, ports: Any, stop: Any) -> None:
    if hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    asyncio.run(_serve(tmp, ports, stop))


# --- client side (this process) ---------------------------------------------------------


def _payloads(n: int, first_id: int) -> list[tuple[str, bytes]]:
    from tests.fakes.wecom_api import WeComSide, text_xml

    side = WeComSide()
    now = int(time.time())
    return [side.app_post(text_xml(f"hr{i % USERS:03d}", "帮助", first_id + i), timestamp=now) for i in range(n)]


async def _fire(base: str, payloads: list[tuple[str, bytes]], concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = list(reversed(payloads))
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), timeout=timeout) as http:

        async def worker() -> None:
            while queue:
                path, body = queue.pop()
                start = time.perf_counter()
                async with http.post(base + path, data=body) as resp:
                    await resp.read()
                latencies.append((time.perf_counter() - start) * 1000)
                statuses[resp.status] = statuses.get(resp.status, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    if set(statuses) != {200}:
        raise SystemExit(f"unexpected statuses: {statuses}")
    return elapsed, latencies


def _report(name: str, elapsed: float, latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    rate = len(ordered) / elapsed
    print(
        f"{name:<10} {len(ordered):>5} req in {elapsed:5.2f} s {rate:6.0f} req/s  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"
    )
    return rate, p99


async def _client(port: int, ref_port: int, n: int, concurrency: int) -> None:
    warm = _payloads(50, 1)
    await _fire(f"http://127.0.0.1:{ref_port}", warm, concurrency)
    await _fire(f"http://127.0.0.1:{port}", warm, concurrency)
    ref_elapsed, ref_lat = await _fire(f"http://127.0.0.1:{ref_port}", _payloads(n, 10_000), concurrency)
    full_elapsed, full_lat = await _fire(f"http://127.0.0.1:{port}", _payloads(n, 10_000), concurrency)
    print(f"WeCom callback ack latency, {n} encrypted text callbacks, concurrency {concurrency}, server on one CPU")
    print(f"(load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs)")
    ref_rate, _ = _report("reference", ref_elapsed, ref_lat)
    full_rate, full_p99 = _report("full path", full_elapsed, full_lat)
    share = 100 * full_rate / ref_rate
    print(f"full path throughput = {share:.0f} % of reference (target >= 50 %)")
    print(f"full path p99 = {full_p99:.1f} ms (target < 50 ms): {'OK' if full_p99 < 50 else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=2000, help="callbacks per target (default 2000)")
    parser.add_argument("-c", type=int, default=16, help="concurrent requests (default 16)")
    parser.add_argument(
        "--dir", default=None, help="folder for the SQLite files (default: system temp dir; /dev/shm leaves fsync out)"
    )
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        ports, stop = ctx.Queue(), ctx.Event()
        server = ctx.Process(target=_server_main, args=(tmp, ports, stop), daemon=True)
        server.start()
        try:
            port, ref_port = ports.get(timeout=60)
            asyncio.run(asyncio.wait_for(_client(port, ref_port, args.n, args.c), HARD_LIMIT_SECONDS))
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                print(f"(replies delivered to the fake WeCom API before shutdown: {ports.get(timeout=30)})")
            server.join(timeout=30)
            if server.is_alive():
                server.terminate()


if __name__ == "__main__":
    main()
