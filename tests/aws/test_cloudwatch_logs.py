"""Log lines and EMF records shipped by the app to CloudWatch Logs (moto server standing in for AWS)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from skycart.config import Settings
from skycart.platform.migrate import upgrade
from tests.aws.conftest import AWS_ENV, log_lines, reset_moto
from tests.metering.cluster import ServerProcess, onboard, operator_key, servers

GROUP = "skycart-test"


def _lines(logs: Any) -> list[dict[str, Any]]:
    return log_lines(logs, GROUP)


def _printed(proc: ServerProcess) -> list[dict[str, Any]]:
    assert proc.stop() == 0, "a graceful stop flushes the queued lines first"
    return [json.loads(line) for line in proc.proc.stdout.read().splitlines() if line.startswith("{")]


def _shipping_server(tmp_path: Path, moto_endpoint: str, **env: str) -> tuple[str, dict[str, str]]:
    """A SQLite database and the environment of a server that ships its logs to GROUP."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'logs.db'}"
    upgrade(Settings(database_url=url))
    return url, {
        **AWS_ENV,
        "SKYCART_LOG_GROUP": GROUP,
        "SKYCART_AWS_ENDPOINT_URL": moto_endpoint,
        "SKYCART_LOG_SEND_SECONDS": "0.5",
        "SKYCART_ACCESS_LOG": "true",
        "SKYCART_LOG_LEVEL": "INFO",
        **env,
    }


def test_each_line_and_each_emf_record_reaches_the_group_once_and_is_not_printed(
    moto_endpoint: str, tmp_path: Path
) -> None:
    reset_moto(moto_endpoint)
    logs = boto3.client("logs", endpoint_url=moto_endpoint, region_name="eu-central-1")
    logs.create_log_group(logGroupName=GROUP)  # CloudFormation's job, never the app's
    url, env = _shipping_server(tmp_path, moto_endpoint, SKYCART_AWS_REGION="eu-central-1", SKYCART_EMF_METRICS="true")
    op = operator_key(url)
    with servers(1, url, **env) as (proc,):
        with httpx.Client(base_url=proc.url, headers={"X-Api-Key": op}) as admin:
            code, key = onboard(admin)
        with httpx.Client(base_url=proc.url, headers={"X-Api-Key": key}) as client:
            ids = [client.get("/v1/products").headers["x-request-id"] for _ in range(7)]
        printed = _printed(proc)
    lines = _lines(logs)
    mine = [line for line in lines if line.get("logger") == "skycart.access" and line.get("airline") == code]
    assert Counter(line["request_id"] for line in mine) == Counter(ids), "every request's line, each once"
    assert all(line["route"] == "/v1/products" for line in mine)
    emf = [line for line in lines if "_aws" in line and line.get("Airline") == code]
    per_airline = [line for line in emf if "Route" not in line]
    assert sum(line["Requests"] for line in per_airline) == len(ids), "each request in one EMF record"
    assert not [line for line in printed if line.get("logger") in ("skycart.access", "skycart.emf")], (
        "a shipped line is not printed too: on ECS stdout is a second copy in the boot log group"
    )
    groups = [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]
    assert groups == [GROUP], "the app created no log group"


def test_the_region_comes_from_aws_region_before_aws_default_region(moto_endpoint: str, tmp_path: Path) -> None:
    """As ECS sets it in a task: the stack's region, whatever AWS_DEFAULT_REGION says and with no SKYCART_AWS_REGION."""
    reset_moto(moto_endpoint)
    stack_region = boto3.client("logs", endpoint_url=moto_endpoint, region_name="eu-west-1")
    other_region = boto3.client("logs", endpoint_url=moto_endpoint, region_name="eu-central-1")
    for logs in (stack_region, other_region):
        logs.create_log_group(logGroupName=GROUP)
    url, env = _shipping_server(tmp_path, moto_endpoint, AWS_REGION="eu-west-1", AWS_DEFAULT_REGION="eu-central-1")
    env.pop("SKYCART_AWS_REGION", None)
    with servers(1, url, **env) as (proc,):
        request_id = httpx.get(f"{proc.url}/healthz").headers["x-request-id"]
        _printed(proc)
    shipped = [line.get("request_id") for line in _lines(stack_region) if line.get("logger") == "skycart.access"]
    assert shipped.count(request_id) == 1
    assert _lines(other_region) == []


@pytest.mark.parametrize("default_region", [None, "ap-southeast-2"])
def test_without_aws_region_boto3s_own_chain_decides(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, default_region: str | None
) -> None:
    from skycart.config import ConfigError
    from skycart.platform import aws

    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "SKYCART_AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    if default_region is None:
        with pytest.raises(ConfigError, match="no AWS region"):
            aws.region(Settings())
        assert aws.region(Settings(aws_region="sa-east-1")) == "sa-east-1"
        return
    monkeypatch.setenv("AWS_DEFAULT_REGION", default_region)
    assert aws.region(Settings()) == default_region
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    assert aws.region(Settings()) == "eu-north-1"
    monkeypatch.setenv("SKYCART_AWS_REGION", "us-west-2")
    assert aws.region(Settings()) == "us-west-2"
    assert aws.client("s3", Settings()).meta.region_name == "us-west-2"
