"""usage.threshold: 80 % and 100 % of the month's quota, each recorded once, from the figure /v1/plan shows."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx

from skycart.billing.alerts import record_usage_thresholds
from skycart.platform.db import create_engine, create_sessionmaker
from tests.billing.usage_data import record_usage
from tests.conftest import LiveServer

QUOTA = 1000


def _check(server: LiveServer) -> None:
    async def run() -> None:
        engine = create_engine(server.settings)
        try:
            await record_usage_thresholds(create_sessionmaker(engine), default_plan=server.settings.default_plan)
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_each_threshold_is_recorded_once_a_month_when_usage_reaches_it(
    make_airline, admin: httpx.Client, server: LiveServer
) -> None:
    code = f"q-{uuid.uuid4().hex[:8]}"
    plan = {
        "code": code,
        "name": "Quota alerts",
        "monthly_request_quota": QUOTA,
        "overage": True,
        "rate_limit_per_second": "50",
        "burst": 100,
        "features": ["webhooks"],
        "monthly_fee": "10.00",
        "overage_per_1000": "1.00",
        "revenue_share_bps": 0,
        "currency": "EUR",
    }
    assert admin.post("/admin/plans", json=plan).status_code == 201
    airline = make_airline(plan=code)
    now = datetime.now(UTC)

    def thresholds() -> list[tuple[int, int]]:
        found = airline.client.get("/v1/events", params={"type": "usage.threshold"}).json()["items"]
        return [(e["data"]["percent"], e["data"]["quota"]) for e in found]

    record_usage(server.settings, airline.code, {now: 700})
    _check(server)
    assert thresholds() == []
    record_usage(server.settings, airline.code, {now: 150})
    _check(server)
    _check(server)  # again: nothing new
    assert thresholds() == [(80, QUOTA)]
    record_usage(server.settings, airline.code, {now: 200})
    _check(server)
    _check(server)
    assert thresholds() == [(80, QUOTA), (100, QUOTA)]
    found = airline.client.get("/v1/events", params={"type": "usage.threshold"}).json()["items"]
    eighty, hundred = (e["data"] for e in found)
    assert 850 <= eighty["used"] < 900 and 1050 <= hundred["used"] < 1100, "the plan's own figure, API calls included"
    assert eighty["period"] == hundred["period"] == now.strftime("%Y-%m")
    assert airline.client.get("/v1/plan").json()["quota"]["used"] >= hundred["used"]
