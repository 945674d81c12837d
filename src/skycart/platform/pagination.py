"""`limit` + opaque `cursor` pagination shared by every list endpoint."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from skycart.errors import ValidationFailed

T = TypeVar("T")

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


def page_of(items: list[T], *, limit: int, key: str | None) -> Page[T]:
    """Build a page from up to limit+1 fetched rows; `key` is the last row's sort key."""
    if len(items) > limit:
        return Page(items=items[:limit], next_cursor=encode_cursor(key or ""))
    return Page(items=items, next_cursor=None)
