"""Query parameters the usage and report routes share."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Query

from skycart.platform.db import utcnow
from skycart.platform.validation import UTCTimestamp

From = Annotated[UTCTimestamp | None, Query(alias="from", description="default: `to` minus one day")]
To = Annotated[UTCTimestamp | None, Query(alias="to", description="default: now")]


def span(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """[from, to): to defaults to now, from to one day before to."""
    end = end or utcnow()
    return start or end - timedelta(days=1), end
