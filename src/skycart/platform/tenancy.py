"""The one place that scopes tenant-owned rows to the calling airline.

Every repository reaches a `TenantScoped` table through `scoped_select`, `scoped_update`
or `scoped_delete`; each adds `airline_id = :caller` so another airline's row is simply
not there (answered 404, never 403).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Delete, ForeignKey, Select, String, Update, delete, select, update
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

T = TypeVar("T", bound="TenantScoped")


class TenantScoped:
    """Adds the non-null owning airline; indexes and unique keys start with it."""

    @declared_attr
    @classmethod
    def airline_id(cls) -> Mapped[str]:
        return mapped_column(String(26), ForeignKey("airlines.id", ondelete="CASCADE"), nullable=False)


@dataclass(frozen=True, slots=True)
class Tenant:
    """The airline a request acts for."""

    id: str
    code: str


def scoped_select(tenant: Tenant, model: type[T], *extra: Any) -> Select[Any]:
    stmt = select(model, *extra) if extra else select(model)
    return stmt.where(model.airline_id == tenant.id)


def scoped_columns(tenant: Tenant, model: type[TenantScoped], *columns: Any) -> Select[Any]:
    return select(*columns).where(model.airline_id == tenant.id)


def scoped_update(tenant: Tenant, model: type[TenantScoped]) -> Update:
    return update(model).where(model.airline_id == tenant.id)


def scoped_delete(tenant: Tenant, model: type[TenantScoped]) -> Delete:
    return delete(model).where(model.airline_id == tenant.id)
