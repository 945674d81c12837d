"""Business usage from the orders tables: orders, items and GMV per airline, window and currency.

Revenue orders only (paid, paid offline, delivered); a cancelled order is not business. Windows are
cut in Python from each order's UTC `created_at`, so no dialect's date functions are needed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from skycart.airlines import repository as airlines
from skycart.billing import repository
from skycart.billing.schemas import BusinessUsageRow
from skycart.errors import ValidationFailed
from skycart.money import to_decimal_string
from skycart.platform.tenancy import Tenant

BusinessGranularity = Literal["hour", "day"]
MAX_SPAN = {"hour": timedelta(days=93), "day": timedelta(days=800)}
_PAGE = 500


def window_start(moment: datetime, granularity: BusinessGranularity) -> datetime:
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if granularity == "day" else moment


async def all_airline_tenants(session: AsyncSession) -> list[Tenant]:
    """Every airline, read a page at a time."""
    found: list[Tenant] = []
    after = None
    while True:
        page = await airlines.list_airlines(session, after=after, limit=_PAGE)
        found.extend(airline.tenant for airline in page)
        if len(page) < _PAGE:
            return found
        after = page[-1].code


async def business_usage(
    session: AsyncSession,
    *,
    tenants: list[Tenant],
    start: datetime,
    end: datetime,
    granularity: BusinessGranularity,
) -> list[BusinessUsageRow]:
    """Orders, items and GMV per (window, airline, currency) for orders created in [start, end)."""
    if end <= start:
        raise ValidationFailed("to: must be after from")
    if end - start > MAX_SPAN[granularity]:
        raise ValidationFailed(f"from/to: at most {MAX_SPAN[granularity].days} days per {granularity} query")
    totals: dict[tuple[datetime, str, str], list[int]] = {}
    for tenant in tenants:
        async for created_at, currency, total_minor, items in repository.revenue_orders(session, tenant, start, end):
            key = (window_start(created_at, granularity), tenant.code, currency)
            counters = totals.setdefault(key, [0, 0, 0])
            counters[0] += 1
            counters[1] += items
            counters[2] += total_minor
    return [
        BusinessUsageRow(
            airline=code,
            window_start=window,
            currency=currency,
            orders=orders,
            items=items,
            gmv=to_decimal_string(gmv, currency),
        )
        for (window, code, currency), (orders, items, gmv) in sorted(totals.items())
    ]
