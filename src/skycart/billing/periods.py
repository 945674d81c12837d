"""Billing periods: a calendar month (UTC) is open until its end plus the grace period, then closed.

A plan change takes effect from the start of the UTC hour that contains it, and statements count
the hourly usage rows, so every billed request falls in exactly one plan segment of one month.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def month_bounds(moment: datetime) -> tuple[datetime, datetime]:
    start = moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


def label(moment: datetime) -> str:
    return month_bounds(moment)[0].strftime("%Y-%m")


def closes_at(moment: datetime, grace_hours: int) -> datetime:
    """When the month containing `moment` closes."""
    return month_bounds(moment)[1] + timedelta(hours=grace_hours)


def is_closed(moment: datetime, *, now: datetime, grace_hours: int) -> bool:
    return now >= closes_at(moment, grace_hours)


def first_open_instant(now: datetime, grace_hours: int) -> datetime:
    """The start of the earliest month still open: last month during the grace period, else this one."""
    this, _ = month_bounds(now)
    previous, _ = month_bounds(this - timedelta(days=1))
    return this if is_closed(previous, now=now, grace_hours=grace_hours) else previous
