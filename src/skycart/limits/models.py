"""The exact counter behind hard quotas."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from skycart.platform.db import Base, IdMixin
from skycart.platform.tenancy import TenantScoped


class QuotaCounter(IdMixin, TenantScoped, Base):
    """Quota units handed out this month under a hard quota: never more than the quota (limits.QuotaBook)."""

    __tablename__ = "quota_counters"
    __table_args__ = (UniqueConstraint("airline_id", "period", name="uq_quota_counters_airline_period"),)

    period: Mapped[str] = mapped_column(String(7))
    granted: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]
