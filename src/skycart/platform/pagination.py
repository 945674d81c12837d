"""`limit` + opaque `cursor` pagination shared by every list endpoint."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from skycart.errors import ValidationFailed

T = TypeVar("T")
R = TypeVar("R")

Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Cursor = Annotated[str | None, Query(max_length=200, description="Opaque cursor from `next_cursor`")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


_VERSION = "v1:"


def encode_cursor(last_key: str) -> str:
    return base64.urlsafe_b64encode((_VERSION + last_key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValidationFailed("cursor: not a cursor this API returned") from exc
    if not raw.startswith(_VERSION):
        raise ValidationFailed("cursor: not a cursor this API returned")
    return raw[len(_VERSION) :]


@dataclass(frozen=True, slots=True)
class Slice(Generic[R]):
    """Up to `limit` rows in key order, and the key to read on after (None on the last page)."""

    rows: list[R]
    after: str | None


async def read_slice(fetch: Callable[[int], Awaitable[list[R]]], *, limit: int, key: Callable[[R], str]) -> Slice[R]:
    """Read one row more than the page holds: whether it came tells whether there is a next page."""
    rows = await fetch(limit + 1)
    if len(rows) > limit:
        return Slice(rows[:limit], key(rows[limit - 1]))
    return Slice(rows, None)


def page_of(found: Slice[R], items: list[T]) -> Page[T]:
    """The API page of a slice: its rows as `items` (already converted), and the cursor to the next one."""
    return Page(items=items, next_cursor=None if found.after is None else encode_cursor(found.after))
