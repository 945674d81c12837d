from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from skycart.catalog.schemas import Amount, Tag
from skycart.platform.validation import CurrencyCode, UTCTimestamp

PlanCode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{1,31}$", examples=["standard"])]


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: PlanCode
    name: str = Field(min_length=1, max_length=100)
    monthly_request_quota: int | None = Field(default=None, ge=0, le=10**12, description="null: unlimited")
    overage: bool = Field(description="true: requests past the quota are served and billed; false: hard stop")
    rate_limit_per_second: Decimal = Field(gt=0, le=100_000, decimal_places=3)
    burst: int = Field(ge=1, le=1_000_000)
    features: list[Tag] = Field(default_factory=list, max_length=50)
    monthly_fee: Amount
    overage_per_1000: Amount = "0"
    revenue_share_bps: int = Field(ge=0, le=10_000)
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


class PlanAssign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: PlanCode
    effective_from: UTCTimestamp | None = Field(default=None, description="default: now")


class AirlinePlanOut(BaseModel):
    airline: str
    plan: PlanOut
    effective_from: datetime


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


class Statement(BaseModel):
    """What an airline owes for a calendar month (UTC)."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)

    airline: str
    month: str = Field(examples=["2026-11"])
    currency: str = Field(description="the currency of the plan in force at the end of the month")
    from_: datetime = Field(alias="from")
    to: datetime
    final: bool = Field(description="false for the current month: requests and GMV are counted to date")
    generated_at: datetime
    plans: list[StatementPlan]
    requests: int
    included_requests: int | None = Field(description="null when any plan of the month is unlimited")
    overage_requests: int
    fee: str = Field(description="fees of the plans billed in `currency`")
    overage_amount: str = Field(description="overage of the plans billed in `currency`")
    gmv: dict[str, str]
    revenue_share: dict[str, str]
    total_due: dict[str, str] = Field(description="fees, overage and revenue share, per currency")


class BusinessUsageRow(BaseModel):
    """Revenue orders (paid, paid offline, delivered) of one airline in one window and currency."""

    airline: str
    window_start: datetime
    currency: str
    orders: int
    items: int = Field(description="sum of the orders' item quantities")
    gmv: str
