"""Typed application state keys (aiohttp ``web.AppKey``)."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.dispatcher import Dispatcher
from bot.outbox import Outbox
from bot.platform_intake import PlatformIntake
from bot.scheduler import Scheduler
from bot.services.context import Core
from bot.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
CORE = web.AppKey("core", Core)
ENGINE = web.AppKey("engine", AsyncEngine)
HTTP = web.AppKey("http", aiohttp.ClientSession)
OUTBOX = web.AppKey("outbox", Outbox)
BACKGROUND = web.AppKey("background", set[asyncio.Task[None]])
SCHEDULER = web.AppKey("scheduler", Scheduler)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
PLATFORM_INTAKE = web.AppKey("platform_intake", PlatformIntake)
