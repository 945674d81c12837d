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
