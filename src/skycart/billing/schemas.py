from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from skycart.platform.validation import Amount, CurrencyCode, Tag, UTCTimestamp

PlanCode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{1,31}$", examples=["standard"])]


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: PlanCode
    name: str = Field(min_length=1, max_length=100)
    monthly_request_quota: int | None = Field(default=None, ge=0, le=10**12, strict=True, description="null: unlimited")
    overage: bool = Field(
        strict=True, description="true: requests past the quota are served and billed; false: hard stop"
    )
    rate_limit_per_second: Decimal = Field(gt=0, le=100_000, decimal_places=3)
    burst: int = Field(ge=1, le=1_000_000, strict=True)
    features: list[Tag] = Field(default_factory=list, max_length=50)
    monthly_fee: Amount
    overage_per_1000: Amount = "0"
    revenue_share_bps: int = Field(ge=0, le=10_000, strict=True)
    currency: CurrencyCode


class PlanOut(BaseModel):
    code: str
    name: str
    monthly_request_quota: int | None
    overage: bool
    rate_limit_per_second: float
    burst: int
    features: list[str]
    monthly_fee: str
    overage_per_1000: str
    revenue_share_bps: int
    currency: str
    retired_at: datetime | None = Field(default=None, description="set once the plan is retired: no longer sold")


class FeatureOut(BaseModel):
    code: str
    description: str
    operations: list[str] = Field(description='API operations it gates, e.g. "POST /v1/sync/sales"')
    pages: list[str] = Field(description="web pages it gates")


class PlanAssign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: PlanCode
    effective_from: UTCTimestamp | None = Field(
        default=None,
        description="default: now. The change takes effect from the start of this UTC hour; a later hour "
        "schedules it. Not in a closed month, not before the airline existed.",
    )


class AirlinePlanOut(BaseModel):
    id: str | None = Field(default=None, description="the change's id; null for the plan the airline started on")
    airline: str
    plan: PlanOut
    effective_from: datetime
    created_at: datetime | None = None
    cancelled_at: datetime | None = Field(default=None, description="a scheduled change withdrawn before it began")


class QuotaOut(BaseModel):
    included: int | None
    used: int
    remaining: int | None


class PlanStatus(BaseModel):
    airline: str
    plan: PlanOut
    effective_from: datetime
    period_start: datetime
    period_end: datetime
    quota: QuotaOut


class UsageRow(BaseModel):
    airline: str
    window_start: datetime
    route: str
    method: str
    status_class: str = Field(description="1xx..5xx, or * when grouped by airline")
    requests: int
    errors: int
    billable: int
    bytes_in: int
    bytes_out: int
    latency_ms_p50: float | None
    latency_ms_p95: float | None


class StatementPlan(BaseModel):
    """One plan in force during part of a statement's month, and what it bills for that part."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)

    plan: str = Field(description="plan code")
    name: str
    currency: str = Field(description="the plan's currency: fee and overage are billed in it")
    from_: datetime = Field(alias="from")
    to: datetime
    fee: str = Field(description="the monthly fee prorated to the time this plan was in force")
    included_requests: int | None = Field(description="the quota prorated the same way; null: unlimited")
    requests: int = Field(description="billable requests counted while this plan was in force")
    overage_requests: int
    overage_amount: str
    revenue_share_bps: int
    gmv: dict[str, str] = Field(description="orders created while this plan was in force, per currency")
    revenue_share: dict[str, str]


class Adjustment(BaseModel):
    """A fact about a closed month that arrived after it closed, billed in the month it arrived in."""

    month: str = Field(description="the closed month the fact belongs to", examples=["2026-10"])
    reason: Literal["late_sale", "cancellation"] = Field(
        description="late_sale: an offline sale synced after its month closed; "
        "cancellation: an order of a closed month cancelled after the close"
    )
    order_id: str
    occurred_at: datetime = Field(description="when the sale was made")
    recorded_at: datetime = Field(description="when the sale was synced, or the order cancelled")
    plan: str = Field(description="the plan in force when the sale was made: its revenue share applies")
    currency: str
    gmv: str = Field(description="negative for a cancellation")
    revenue_share_bps: int
    revenue_share: str


class Statement(BaseModel):
    """What an airline owes for a calendar month (UTC)."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)

    airline: str
    month: str = Field(examples=["2026-11"])
    currency: str = Field(description="the currency of the plan in force at the end of the month")
    from_: datetime = Field(alias="from")
    to: datetime
    final: bool = Field(description="true once the month is closed: the statement is stored and never changes")
    status: Literal["open", "closed"] = Field(description="open: counted to date; closed: final")
    closes_at: datetime = Field(description="month end plus the grace period")
    generated_at: datetime
    plans: list[StatementPlan]
    requests: int
    included_requests: int | None = Field(description="null when any plan of the month is unlimited")
    overage_requests: int
    fee: str = Field(description="fees of the plans billed in `currency`")
    overage_amount: str = Field(description="overage of the plans billed in `currency`")
    gmv: dict[str, str]
    revenue_share: dict[str, str]
    adjustments: list[Adjustment] = Field(
        default_factory=list, description="late facts of closed months, posted into this month"
    )
    adjustments_revenue_share: dict[str, str] = Field(default_factory=dict)
    total_due: dict[str, str] = Field(description="fees, overage, revenue share and adjustments, per currency")


class BusinessUsageRow(BaseModel):
    """Revenue orders (paid, paid offline, delivered) of one airline in one window and currency."""

    airline: str
    window_start: datetime
    currency: str
    orders: int
    items: int = Field(description="sum of the orders' item quantities")
    gmv: str
