"""An airline's webhook endpoints: saved (after the SSRF guard), listed, changed, deleted; their signing
secret rotated; their deliveries listed and retried. No HTTP, no commit.

A secret is `whsec_` and 24 random bytes, shown once when made. It is stored sealed (platform.sealing),
not hashed: signing needs it in the clear. A rotated secret's predecessor signs too for
`PREVIOUS_SECRET_SECONDS`, so a receiver can switch without losing a delivery.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from skycart.config import Settings
from skycart.errors import NotFound, WebhooksNotConfigured
from skycart.events import repository, signing, targets
from skycart.events.models import WebhookDelivery, WebhookEndpoint
from skycart.events.schemas import DeliveryOut, SecretOut, WebhookCreated, WebhookIn, WebhookOut, WebhookPatch
from skycart.platform.db import utcnow
from skycart.platform.pagination import Slice, read_slice
from skycart.platform.sealing import Sealer
from skycart.platform.tenancy import Tenant

PREVIOUS_SECRET_SECONDS = 24 * 3600
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def _sealer(sealer: Sealer | None) -> Sealer:
    if sealer is None:
        raise WebhooksNotConfigured("webhooks need SKYCART_WEBHOOK_SECRETS_KEYS on this platform")
    return sealer


def webhook_out(row: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=row.id,
        url=row.url,
        events=list(row.event_types),
        enabled=row.enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
        failing_since=row.failing_since,
        disabled_reason=row.disabled_reason,
    )


def delivery_out(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == PENDING else None,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


async def _endpoint(session: AsyncSession, tenant: Tenant, webhook_id: str) -> WebhookEndpoint:
    found = await repository.endpoint(session, tenant, webhook_id)
    if found is None:
        raise NotFound(f"webhook {webhook_id} not found")
    return found


async def create_webhook(
    session: AsyncSession, *, tenant: Tenant, data: WebhookIn, settings: Settings, sealer: Sealer | None
) -> WebhookCreated:
    sealing = _sealer(sealer)
    await targets.resolve(data.url, settings)
    secret = signing.new_secret()
    row = WebhookEndpoint(
        airline_id=tenant.id,
        url=data.url,
        event_types=list(data.events),
        enabled=data.enabled,
        secret_sealed=sealing.seal(secret),
    )
    await repository.add(session, row)
    return WebhookCreated(**webhook_out(row).model_dump(), secret=secret)


async def list_webhooks(session: AsyncSession, *, tenant: Tenant, after: str | None, limit: int) -> Slice[WebhookOut]:
    found = await read_slice(
        lambda n: repository.endpoints_page(session, tenant, after=after, limit=n), limit=limit, key=lambda r: r.id
    )
    return Slice([webhook_out(row) for row in found.rows], found.after)


async def get_webhook(session: AsyncSession, *, tenant: Tenant, webhook_id: str) -> WebhookOut:
    return webhook_out(await _endpoint(session, tenant, webhook_id))


async def update_webhook(
    session: AsyncSession, *, tenant: Tenant, webhook_id: str, data: WebhookPatch, settings: Settings
) -> WebhookOut:
    row = await _endpoint(session, tenant, webhook_id)
    if data.url is not None:
        await targets.resolve(data.url, settings)
        row.url = data.url
    if data.events is not None:
        row.event_types = list(data.events)
    if data.enabled is not None:
        if data.enabled and not row.enabled:  # switched on again: its failures so far are forgiven
            row.failing_since, row.disabled_reason = None, None
        row.enabled = data.enabled
    await session.flush()
    return webhook_out(row)


async def delete_webhook(session: AsyncSession, *, tenant: Tenant, webhook_id: str) -> None:
    if not await repository.remove(session, tenant, webhook_id):
        raise NotFound(f"webhook {webhook_id} not found")


async def rotate_secret(
    session: AsyncSession, *, tenant: Tenant, webhook_id: str, sealer: Sealer | None, now: datetime | None = None
) -> SecretOut:
    sealing = _sealer(sealer)
    row = await _endpoint(session, tenant, webhook_id)
    now = now or utcnow()
    secret = signing.new_secret()
    row.previous_secret_sealed = row.secret_sealed
    row.previous_until = now + timedelta(seconds=PREVIOUS_SECRET_SECONDS)
    row.secret_sealed = sealing.seal(secret)
    await session.flush()
    return SecretOut(secret=secret, previous_valid_until=row.previous_until)


def signing_secrets(row: WebhookEndpoint, sealer: Sealer, now: datetime) -> list[str]:
    """The secrets a delivery made now is signed with: the current one, and a rotated one still valid."""
    found = [sealer.open(row.secret_sealed)]
    if row.previous_secret_sealed and row.previous_until is not None and row.previous_until > now:
        found.append(sealer.open(row.previous_secret_sealed))
    return found


async def list_deliveries(
    session: AsyncSession, *, tenant: Tenant, webhook_id: str, status: str | None, after: str | None, limit: int
) -> Slice[DeliveryOut]:
    await _endpoint(session, tenant, webhook_id)
    found = await read_slice(
        lambda n: repository.deliveries_page(session, tenant, webhook_id, status=status, after=after, limit=n),
        limit=limit,
        key=lambda row: row.id,
    )
    return Slice([delivery_out(row) for row in found.rows], found.after)


async def retry_delivery(
    session: AsyncSession, *, tenant: Tenant, webhook_id: str, delivery_id: str, now: datetime | None = None
) -> DeliveryOut:
    """Send a delivery again now: a failed one is retried, a delivered one replayed (same `webhook-id`)."""
    await _endpoint(session, tenant, webhook_id)
    row = await repository.delivery(session, tenant, webhook_id, delivery_id)
    if row is None:
        raise NotFound(f"delivery {delivery_id} not found")
    if row.status != PENDING or row.claimed_until is None:
        row.status, row.next_attempt_at, row.claimed_until = PENDING, now or utcnow(), None
        await session.flush()
    return delivery_out(row)
