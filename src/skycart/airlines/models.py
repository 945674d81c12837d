from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from skycart.platform.db import Base, IdMixin, TimestampMixin
from skycart.platform.tenancy import Tenant


class Airline(IdMixin, TimestampMixin, Base):
    __tablename__ = "airlines"

    code: Mapped[str] = mapped_column(String(3), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    currencies: Mapped[list[str]]
    default_locale: Mapped[str] = mapped_column(String(16))
    locales: Mapped[list[str]]
    settings: Mapped[dict[str, Any]]

    @property
    def tenant(self) -> Tenant:
        """The airline as the scoping choke point knows it."""
        return Tenant(self.id, self.code)


class ApiKey(IdMixin, Base):
    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_airline", "airline_id"),)

    # Null for platform operator keys.
    airline_id: Mapped[str | None] = mapped_column(
        String(26), ForeignKey("airlines.id", ondelete="CASCADE"), nullable=True
    )
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100), default="")
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
