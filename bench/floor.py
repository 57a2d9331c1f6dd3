"""The floor for WeCom callbacks: the least a durable intake must do, and nothing more.

    python bench/floor.py --db /tmp/floor.db [--port 0]

Per ``POST /wecom/callback``: check the timestamp, verify the signature, decrypt and parse the
message with the product's own code (``bot.channels.wecom.crypto`` / ``parse``), insert its
dedupe key in SQLite (one autocommitted INSERT per callback, WAL, the product's pragmas), and
answer an empty 200. No dispatcher, no outbox, no ORM. ``bench/wecom_callback.py`` runs it on the
same core as the product and reports the product's figures as ratios to it.

Prints ``listening <port>`` on stdout once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiosqlite  # noqa: E402
from aiohttp import web  # noqa: E402

from bot.channels.wecom.crypto import CallbackCrypto, CallbackError  # noqa: E402
from bot.channels.wecom.parse import parse_app_xml  # noqa: E402

MAX_SKEW_SECONDS = 24 * 3600


async def serve(db_path: str, port: int, token: str, aes_key: str, corp_id: str) -> None:
    crypto = CallbackCrypto(token, aes_key, corp_id)
    db = await aiosqlite.connect(db_path, isolation_level=None)  # autocommit: each INSERT is durable
    for pragma in ("journal_mode=WAL", "busy_timeout=30000", "foreign_keys=ON"):
        await db.execute(f"PRAGMA {pragma}")
    await db.execute(
        "CREATE TABLE IF NOT EXISTS inbound (id INTEGER PRIMARY KEY, dedupe_key TEXT NOT NULL UNIQUE, "
        "sender TEXT NOT NULL, body TEXT NOT NULL, received_at REAL NOT NULL)"
    )

    async def callback(request: web.Request) -> web.Response:
        body = await request.read()
        q = request.query
        try:
            sig, ts, nonce = q["msg_signature"], q["timestamp"], q["nonce"]
            if abs(time.time() - int(ts)) > MAX_SKEW_SECONDS:
                return web.Response(status=401, text="")
            inbound = parse_app_xml(crypto.decrypt_xml(body, sig, ts, nonce))
        except (CallbackError, KeyError, ValueError):
            return web.Response(status=401, text="")
        if inbound is not None:
            await db.execute(
                "INSERT OR IGNORE INTO inbound (dedupe_key, sender, body, received_at) VALUES (?, ?, ?, ?)",
                (inbound.dedupe_key, inbound.msg.sender_id, inbound.msg.text, time.time()),
            )
        return web.Response(status=200, text="")

    async def count(request: web.Request) -> web.Response:
        async with db.execute("SELECT count(*) FROM inbound") as cur:
            row = await cur.fetchone()
        return web.json_response({"stored": row[0] if row else 0})

    app = web.Application()
    app.router.add_post("/wecom/callback", callback)
    app.router.add_get("/count", count)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(f"listening {runner.addresses[0][1]}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="SQLite file")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    token, aes_key, corp_id = os.environ["WECOM_TOKEN"], os.environ["WECOM_AES_KEY"], os.environ["WECOM_CORP_ID"]
    try:
        asyncio.run(serve(args.db, args.port, token, aes_key, corp_id))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
