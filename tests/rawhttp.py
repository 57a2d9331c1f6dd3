"""Raw HTTP/1.1 requests to the test server (any header byte: 0xFF, non-ASCII, huge) and row counts.

aiohttp's client refuses to send some header values; real clients on the internet do not, so the
tests that need them write the request bytes themselves.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import text
from sqlmodel import SQLModel

from bot.keys import CORE

Headers = list[tuple[bytes, bytes]]


async def send_raw(
    port: int, method: str, path: str, headers: Headers | None = None, body: bytes = b""
) -> tuple[int, bytes]:
    """Send one request to 127.0.0.1:``port`` on its own connection; (status, body). Status 0: no status line."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close"]
    lines += [name + b": " + value for name, value in headers or []]
    if body or method in {"POST", "PUT"}:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    try:
        await writer.wait_closed()
    except ConnectionError:
        pass
    head, _, rest = answer.partition(b"\r\n\r\n")
    parts = head.split(b"\r\n", 1)[0].split()
    return (int(parts[1]) if len(parts) > 1 else 0), rest


async def raw_request(
    client: TestClient, method: str, path: str, headers: Headers | None = None, body: bytes = b""
) -> tuple[int, bytes]:
    """``send_raw`` to the test client's server."""
    assert client.server.port is not None
    return await send_raw(client.server.port, method, path, headers, body)


async def row_counts(app: web.Application) -> dict[str, int]:
    """Rows per table (one query), for asserting that a refused request changed nothing."""
    tables = [t.name for t in SQLModel.metadata.sorted_tables]
    query = " UNION ALL ".join(f"SELECT '{name}', COUNT(*) FROM {name}" for name in tables)
    async with app[CORE].sessions() as session:
        rows = (await session.exec(text(query))).all()  # type: ignore[call-overload]
    return {str(name): int(count) for name, count in rows}
