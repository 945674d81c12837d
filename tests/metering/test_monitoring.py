"""What a running process tells the outside: access-log lines, CloudWatch EMF lines, retention."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select

from skycart.config import Settings
from skycart.metering.aggregate import UsageAggregator
from skycart.metering.exporters import emf_lines
from skycart.metering.models import UsageHour, UsageMinute
from skycart.metering.retention import prune
from skycart.metering.sink import DatabaseSink
from skycart.platform.db import create_engine, create_sessionmaker, utcnow
from skycart.platform.migrate import upgrade
from tests.conftest import flight_body, product_body
from tests.metering.cluster import ServerProcess, one_server


def _stopped_json_lines(proc: ServerProcess) -> list[dict]:
    """Stop the server gracefully and read the JSON lines it printed."""
    assert proc.stop() == 0
    return [json.loads(line) for line in proc.proc.stdout.read().splitlines() if line.startswith("{")]


def test_each_request_logs_one_json_line_and_each_flush_writes_emf(tmp_path: Path) -> None:
    env = {"SKYCART_ACCESS_LOG": "true", "SKYCART_EMF_METRICS": "true", "SKYCART_LOG_LEVEL": "INFO"}
    with one_server(tmp_path, **env) as (proc, code, key):
        with httpx.Client(base_url=proc.url, headers={"X-Api-Key": key, "X-Request-Id": "trace-42"}) as client:
            answered = [client.get("/v1/products/NOPE") for _ in range(3)]
        time.sleep(1.5)
        lines = _stopped_json_lines(proc)
    assert all(r.headers["x-request-id"] == "trace-42" for r in answered)
    access = [line for line in lines if line.get("logger") == "skycart.access" and line.get("airline") == code]
    assert len(access) == 3
    assert all(line["request_id"] == "trace-42" and line["route"] == "/v1/products/{sku}" for line in access)
    assert all(line["status"] == 404 and line["event"] == "request" for line in access)
    emf = [line for line in lines if "_aws" in line and line.get("Airline") == code]
    per_route = [line for line in emf if line.get("Route") == "/v1/products/{sku}"]
    assert sum(line["Requests"] for line in per_route) == 3 and sum(line["Errors"] for line in per_route) == 3
    directive = per_route[0]["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "SkyCart" and directive["Dimensions"] == [["Airline", "Route"]]
    assert any(line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Airline"]] for line in emf)


def test_with_metering_switched_off_requests_keep_their_ids_and_log_lines_and_nothing_is_counted(
    tmp_path: Path,
) -> None:
    env = {"SKYCART_METERING_ENABLED": "false", "SKYCART_ACCESS_LOG": "true", "SKYCART_LOG_LEVEL": "INFO"}
    with one_server(tmp_path, **env) as (proc, code, key):
        with httpx.Client(base_url=proc.url, headers={"X-Api-Key": key}) as client:
            assert client.post("/v1/products", json=product_body("OFF", ["EUR"])).status_code == 201
            flight = client.post("/v1/flights", json=flight_body()).json()["id"]
            menus = [client.get(f"/v1/flights/{flight}/menu") for _ in range(3)]  # the first renders, then warm
            odd = client.get("/v1/products/NOPE", headers={"X-Request-Id": "has space"})
            usage = client.get("/v1/usage", params={"granularity": "minute"})
        time.sleep(1.5)  # a flush interval: had anything been counted, it would be stored now
        with httpx.Client(base_url=proc.url, headers={"X-Api-Key": key}) as client:
            assert client.get("/v1/usage", params={"granularity": "minute"}).json() == []
        lines = _stopped_json_lines(proc)
    assert [r.status_code for r in menus] == [200, 200, 200] and odd.status_code == 404 and usage.json() == []
    ids = [r.headers["x-request-id"] for r in (*menus, odd)]
    assert len(set(ids)) == 4 and "has space" not in ids, "an unusable caller id is replaced by a fresh one"
    logged = {line["request_id"]: line for line in lines if line.get("logger") == "skycart.access"}
    assert [logged[i]["route"] for i in ids] == ["/v1/flights/{flight_id}/menu"] * 3 + ["/v1/products/{sku}"]
    assert all(logged[i]["airline"] == code for i in ids)


def test_emf_records_sum_per_airline_and_per_route() -> None:
    aggregator = UsageAggregator()
    for route, status in (("/v1/a", 200), ("/v1/a", 500), ("/v1/b", 200)):
        aggregator.record("AAA", route, "GET", status, 0.003, 0, 10, True)
    records = emf_lines(aggregator.take())
    airline = next(r for r in records if "Route" not in r)
    assert (airline["Airline"], airline["Requests"], airline["Errors"]) == ("AAA", 3, 1)
    assert airline["Latency"] == {"Values": [5], "Counts": [3]}
    assert {r["Route"]: r["Requests"] for r in records if "Route" in r} == {"/v1/a": 2, "/v1/b": 1}


def test_old_usage_is_pruned_by_retention(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'retention.db'}"
    settings = Settings(database_url=url, usage_minute_retention_days=1, usage_hour_retention_days=30)
    upgrade(settings)

    async def _run() -> tuple[int, int]:
        engine = create_engine(settings)
        sessions = create_sessionmaker(engine)
        now = utcnow()
        minute = lambda moment: int(moment.timestamp() // 60)  # noqa: E731
        row = [1, 0, 1, 0, 0, 1000] + [0] * 12
        batch = {(minute(now - timedelta(days=days)), "AAA", "/v1/x", "GET", "2xx"): list(row) for days in (0, 2, 40)}
        await DatabaseSink(sessions, "t").write("f1", batch)
        await prune(sessions, settings, now)
        async with sessions() as session:
            minutes = (await session.execute(select(func.count()).select_from(UsageMinute))).scalar_one()
            hours = (await session.execute(select(func.count()).select_from(UsageHour))).scalar_one()
        await engine.dispose()
        return minutes, hours

    assert asyncio.run(_run()) == (1, 2), "minute rows: only today's; hour rows: all but the 40-day-old one"
