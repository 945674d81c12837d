"""Every table, imported in one place so Alembic and tests see the whole schema."""

from skycart.airlines.models import Airline, ApiKey
from skycart.billing.models import AirlinePlan, ClosedStatement, Plan
from skycart.catalog.models import Product, ProductImage
from skycart.events.models import Event, EventOnce, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from skycart.flights.models import Flight, LoadedStock
from skycart.limits.models import QuotaCounter
from skycart.metering.models import MeteringFlush, UsageHour, UsageMinute
from skycart.orders.models import IdempotencyRecord, OfflineSale, Order, OrderLine
from skycart.web.models import WebSession

__all__ = [
    "Airline",
    "AirlinePlan",
    "ApiKey",
    "ClosedStatement",
    "Event",
    "EventOnce",
    "QuotaCounter",
    "Flight",
    "IdempotencyRecord",
    "LoadedStock",
    "MeteringFlush",
    "OfflineSale",
    "Order",
    "OrderLine",
    "Plan",
    "Product",
    "ProductImage",
    "UsageHour",
    "UsageMinute",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebSession",
]
