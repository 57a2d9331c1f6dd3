"""Webhook endpoints: the company systems that receive outbound events."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import WebhookEndpoint


async def webhook_endpoints(session: AsyncSession, *, enabled_only: bool = False) -> Sequence[WebhookEndpoint]:
    stmt = select(WebhookEndpoint).order_by(col(WebhookEndpoint.id))
    if enabled_only:
        stmt = stmt.where(col(WebhookEndpoint.enabled).is_(True))
    return (await session.exec(stmt)).all()


async def get_webhook_endpoint(session: AsyncSession, *, endpoint_id: int) -> WebhookEndpoint | None:
    return await session.get(WebhookEndpoint, endpoint_id)


def add_webhook_endpoint(session: AsyncSession, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """No commit."""
    session.add(endpoint)
    return endpoint


async def delete_webhook_endpoint(session: AsyncSession, endpoint: WebhookEndpoint) -> None:
    """No commit."""
    await session.delete(endpoint)
