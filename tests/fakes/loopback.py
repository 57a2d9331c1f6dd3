"""What every fake platform shares: an aiohttp app served on 127.0.0.1 (aiohttp's ``TestServer``).

A fake subclasses ``LoopbackFake``, adds its routes in ``add_routes`` (the platform's documented
paths and wire format), and, when it must let go of something before the server stops (open
websockets, requests it holds), does that in ``closing``.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestServer


class LoopbackFake:
    server: TestServer | None

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1 (``port`` 0: any free port); the base URL."""
        app = web.Application()
        self.add_routes(app)
        self.server = TestServer(app, host="127.0.0.1", port=port)
        await self.server.start_server()
        return self.base

    async def closing(self) -> None:
        """Release what would keep the server from stopping (held requests, open sockets)."""

    async def close(self) -> None:
        await self.closing()
        if self.server is not None:
            await self.server.close()

    @property
    def base(self) -> str:
        """``http://127.0.0.1:<port>``, no trailing slash."""
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")
