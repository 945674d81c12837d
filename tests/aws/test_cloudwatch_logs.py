"""Log lines shipped by the app to CloudWatch Logs (moto server standing in for AWS)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import httpx

from skycart.config import Settings
from skycart.platform.migrate import upgrade
from tests.aws.conftest import AWS_ENV
from tests.metering.cluster import onboard, operator_key, servers


def test_log_lines_arrive_in_the_group_with_airline_and_request_id(moto_endpoint: str, tmp_path: Path) -> None:
    logs = boto3.client("logs", endpoint_url=moto_endpoint, region_name="eu-central-1")
    logs.create_log_group(logGroupName="skycart-test")  # CloudFormation's job, never the app's
    url = f"sqlite+aiosqlite:///{tmp_path / 'logs.db'}"
    upgrade(Settings(database_url=url))
    op = operator_key(url)
    env = {
        **AWS_ENV,
        "SKYCART_LOG_GROUP": "skycart-test",
        "SKYCART_AWS_ENDPOINT_URL": moto_endpoint,
        "SKYCART_AWS_REGION": "eu-central-1",
        "SKYCART_LOG_SEND_SECONDS": "0.5",
        "SKYCART_ACCESS_LOG": "true",
        "SKYCART_LOG_LEVEL": "INFO",
    }
    with servers(1, url, **env) as (proc,):
        with httpx.Client(base_url=proc.url, headers={"X-Api-Key": op}) as admin:
            code, key = onboard(admin)
        with httpx.Client(base_url=proc.url, headers={"X-Api-Key": key}) as client:
            ids = [client.get("/v1/products").headers["x-request-id"] for _ in range(3)]
        assert proc.stop() == 0, "a graceful stop flushes the queued lines first"
    events = logs.filter_log_events(logGroupName="skycart-test")["events"]
    lines = [json.loads(e["message"]) for e in events]
    mine = [line for line in lines if line.get("logger") == "skycart.access" and line.get("airline") == code]
    assert sorted(line["request_id"] for line in mine) == sorted(ids)
    assert all(line["route"] == "/v1/products" for line in mine)
    groups = [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]
    assert groups == ["skycart-test"], "the app created no log group"
