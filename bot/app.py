"""The aiohttp application factory. ``cleanup_ctx`` owns every long-lived resource."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import timedelta

import aiohttp
from aiohttp import web
from sqlalchemy import delete, text
from sqlmodel import col

from bot import console
from bot.api import admin, charts, openapi, ops, platform
from bot.channels import registry
from bot.channels.email import EmailSender
from bot.channels.sms import build_sms_sender
from bot.clock import Clock, SystemClock
from bot.console.web import PREFIX as CONSOLE_PATH
from bot.dispatcher import Dispatcher
from bot.jobs import register_jobs
from bot.keys import BACKGROUND, CORE, DISPATCHER, ENGINE, HTTP, OUTBOX, PLATFORM_INTAKE, SCHEDULER, SETTINGS
from bot.language import llm
from bot.language import parse as language_rules
from bot.outbox import Outbox
from bot.platform_client import PlatformClient
from bot.platform_intake import PlatformIntake
from bot.scheduler import Scheduler
from bot.services import console_auth, notices, outbound
from bot.services.context import Core
from bot.services.leases import alive
from bot.settings import Settings
from bot.templating import Templates
from bot.webhook_client import WebhookSender
from handlers import CANDIDATE, ROUTERS
from storage import repo
from storage.db import create_engine, session_maker
from storage.models import InboundMessage

log = logging.getLogger(__name__)

INTAKE_KEEP = timedelta(days=7)


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[BACKGROUND] = set()
    app.add_routes(platform.routes)
    app.add_routes(admin.routes)
    app.add_routes(openapi.routes)
    app.add_routes(charts.routes)
    console.add_routes(app)
    app.add_routes(ops.routes)
    app.router.add_get("/healthz", healthz)
    for channel in registry.CHANNELS:  # their callback routes must exist before the app starts
        app.add_routes(channel.routes(settings))
    app.on_shutdown.append(_log_stopping)
    app.cleanup_ctx.append(_lifecycle_ctx)  # first in, so its end runs after every other cleanup
    app.cleanup_ctx.append(_core_ctx(clock or SystemClock()))
    app.cleanup_ctx.append(_delivery_ctx)
    app.cleanup_ctx.append(_platform_intake_ctx)
    app.cleanup_ctx.append(_scheduler_ctx)
    return app


async def freeze_startup_heap(app: web.Application) -> None:
    """For the serving process, once started (``on_startup`` after the cleanup contexts): move what
    start-up allocated (modules, mappers, templates) out of the garbage collector's sight, and
    collect the young generation less often. A full collection otherwise walks all of it: pauses
    of 80-100 ms every few seconds under load, each stalling every callback in flight (it was most
    of bench/wecom_callback.py's ack p99). Not for tests, which start many apps in one process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


async def _log_stopping(app: web.Application) -> None:
    log.info("stopping: finishing the work in flight")


async def _lifecycle_ctx(app: web.Application) -> AsyncIterator[None]:
    """The service's last line: said after the scheduler, the outbox, the channels and the
    database are closed, so an admin knows the stop was clean (a crash ends without it)."""
    started = time.monotonic()
    yield
    log.info("stopped after %.0f s", time.monotonic() - started)


def _core_ctx(clock: Clock):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        # One summary of what is on and off; WARNING when something is off (README: 启动摘要).
        summary = registry.startup_summary(settings)
        warn = registry.disabled_features(settings) or registry.startup_warnings(settings)
        log.log(logging.WARNING if warn else logging.INFO, "%s", summary)
        for level, note in registry.startup_notes(settings, console_auth.service_url(settings) + CONSOLE_PATH):
            log.log(level, "%s", note)
        engine = create_engine(settings.database_url)
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        sessions = session_maker(engine)
        wake = asyncio.Event()  # the outbox worker's; rung after notices are committed
        core = Core.reaching(
            registry.reach(settings),
            settings=settings,
            sessions=sessions,
            clock=clock,
            templates=Templates(settings.template_dir),
            platform=PlatformClient.configured(settings, http, clock),
            wake_outbox=wake.set,
        )
        async with sessions() as session:
            await repo.ensure_default_reasons(session)
            # Rows an earlier boot of this instance had claimed: that process is gone, resume them now.
            taken = await repo.take_over_claims_and_commit(
                session, instance=core.instance, worker=core.worker_id, now=clock.now()
            )
            await repo.prune_replica_leases_and_commit(session, now=clock.now())  # of boots long gone
        if any(taken.values()):
            log.warning("taking over claims left by an earlier run of %s: %s", core.instance, taken)
        app[ENGINE], app[HTTP], app[CORE] = engine, http, core
        # What failed deliveries mean for people is the services' rule, not the worker's.
        app[OUTBOX] = Outbox(core, wake=wake, policy=notices.DeliveryFailures(core))
        app[DISPATCHER] = Dispatcher(core, ROUTERS, proposer=llm.proposer(settings, http), candidate=CANDIDATE)
        await asyncio.to_thread(language_rules.warm)
        # This process's replica lease, held before it claims anything: while it is renewed, its claims
        # are its own; once it stops (after the channels, outbox and scheduler) or dies, another
        # replica takes its work over.
        async with alive(core):
            yield
        await http.close()
        await engine.dispose()

    return ctx


async def _delivery_ctx(app: web.Application) -> AsyncIterator[None]:
    """Senders first (email, SMS, then each channel's), then the outbox worker; on shutdown the
    channels stop while the worker still runs, then the worker."""
    core, outbox = app[CORE], app[OUTBOX]
    if core.settings.smtp_enabled:
        outbox.register(EmailSender(core.settings, clock=core.clock))
    # Outbound events to the company's systems: always registered (endpoints may be added in the console).
    outbox.register(
        WebhookSender(
            app[HTTP],
            clock=core.clock,
            resolve=outbound.resolver(core),
            timeout=core.settings.webhook_timeout_seconds,
            max_attempts=core.settings.webhook_max_attempts,
        )
    )
    sms = build_sms_sender(core.settings)
    if sms is not None:
        outbox.register(sms)
        log.info("SMS notices through %s", core.settings.sms_provider)
    async with AsyncExitStack() as channels:
        for channel in registry.CHANNELS:
            await channels.enter_async_context(channel.running(app, outbox))
        stop = asyncio.Event()
        task = asyncio.create_task(outbox.run_forever(stop), name="outbox")
        app[BACKGROUND].add(task)
        task.add_done_callback(app[BACKGROUND].discard)
        yield
        await channels.aclose()
        stop.set()
        if not task.done():  # (a test may have stopped it to run the passes itself)
            try:
                await asyncio.wait_for(task, timeout=10)
            except TimeoutError:
                task.cancel()


async def _platform_intake_ctx(app: web.Application) -> AsyncIterator[None]:
    """Platform events: stored at once, applied by one worker (stopped before the outbox)."""
    intake = PlatformIntake(app[CORE], app[BACKGROUND])
    intake.start()
    app[PLATFORM_INTAKE] = intake
    yield
    await intake.stop()


async def _scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    core = app[CORE]
    sweeps = core.metrics.sweep_seconds
    scheduler = Scheduler(core.settings.timezone, timed=lambda job, seconds: sweeps.labels(sweep=job).observe(seconds))

    async def purge_inbound() -> None:
        """Processed intake items (chat messages hold their text), taken-in keys and the record of
        heartbeats are kept 7 days."""
        cutoff = core.clock.now() - INTAKE_KEEP
        async with core.sessions() as session:
            await session.exec(delete(InboundMessage).where(col(InboundMessage.received_at) < cutoff))
            await session.commit()
            # Platform events applied stay recorded in platform_event (heartbeats a week); chat replies in the outbox.
            await repo.purge_intake_and_commit(session, before=cutoff)
            await repo.purge_heartbeats_and_commit(session, before=cutoff)
            # Pacing windows are a minute or so: a day of marks is plenty.
            await repo.purge_pace_marks_and_commit(session, before=core.clock.now() - timedelta(days=1))
        for channel in registry.CHANNELS:  # what each channel keeps beside them
            await channel.purge(core, before=cutoff)
        await console_auth.purge(core)  # console links and sessions expired a day ago

    scheduler.cron("housekeeping.purge_inbound", purge_inbound, hour=3, minute=17)
    register_jobs(scheduler, core)
    scheduler.start()
    app[SCHEDULER] = scheduler
    yield
    await scheduler.shutdown()


async def healthz(request: web.Request) -> web.Response:
    try:
        async with request.app[ENGINE].connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - health must answer, not raise
        log.error("health check failed: %s", exc)
        return web.json_response({"status": "error", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok"})
