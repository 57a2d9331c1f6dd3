"""Chart images for DingTalk markdown (which links images by URL). The token in the path is a
random, unguessable key; the chart holds only counts by reason, no candidate data."""

from __future__ import annotations

import re

from aiohttp import web

from bot.keys import CORE
from storage import repo

routes = web.RouteTableDef()

TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@routes.get("/charts/{token}.png")
async def chart(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    if not TOKEN.match(token):
        raise web.HTTPNotFound()
    async with request.app[CORE].sessions() as session:
        png = await repo.summary_chart(session, token=token)
    if png is None:
        raise web.HTTPNotFound()
    return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "public, max-age=86400"})
