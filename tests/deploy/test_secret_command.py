"""`skycart-deploy secret rotate` and the follow loop behind it, against moto server.

moto cannot run the rotation function (Docker), so following a real rotation is tested on the function:
between polls the test runs the Lambda's next step against MariaDB, as Secrets Manager would.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from skycart_deploy import rotation
from skycart_deploy.cli import app
from tests.deploy import test_db_secret_rotation as lambda_tests
from tests.deploy.test_db_secret_rotation import CURRENT, PENDING, REGION, STEPS, Rig, begin_rotation

runner = CliRunner()
rig = lambda_tests.rig  # the scratch database, its users and secrets, shared with the Lambda's tests


@pytest.fixture
def secrets(moto_endpoint: str) -> Any:
    return boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name=REGION)


def app_secret(secrets: Any, *, rotation_enabled: bool = True) -> str:
    arn = secrets.create_secret(Name=f"skycart/{uuid.uuid4().hex[:8]}/db", SecretString=json.dumps({"username": "a"}))[
        "ARN"
    ]
    if rotation_enabled:
        secrets.rotate_secret(SecretId=arn, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
    return arn


def deploy_root_stack(endpoint: str, environment: str, secret_arn: str) -> None:
    """`skycart-<env>` with a nested `Data` stack that outputs DatabaseSecretArn, as skycart.yaml has it."""
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    cloudformation = boto3.client("cloudformation", endpoint_url=endpoint, region_name=REGION)
    bucket = f"templates-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    data = {
        "Parameters": {"SecretArn": {"Type": "String"}},
        "Resources": {"Assets": {"Type": "AWS::S3::Bucket"}},
        "Outputs": {"DatabaseSecretArn": {"Value": {"Ref": "SecretArn"}}},
    }
    s3.put_object(Bucket=bucket, Key="data.yaml", Body=json.dumps(data))
    nested = {"TemplateURL": f"https://{bucket}.s3.amazonaws.com/data.yaml", "Parameters": {"SecretArn": secret_arn}}
    root = {"Resources": {"Data": {"Type": "AWS::CloudFormation::Stack", "Properties": nested}}}
    cloudformation.create_stack(StackName=f"skycart-{environment}", TemplateBody=json.dumps(root))


def versions(secrets: Any, arn: str) -> dict[str, list[str]]:
    return secrets.describe_secret(SecretId=arn)["VersionIdsToStages"]


def test_rotate_finds_the_secret_through_the_environments_stacks_and_starts_a_rotation(
    moto_endpoint: str, secrets: Any
) -> None:
    arn = app_secret(secrets)
    deploy_root_stack(moto_endpoint, "dev", arn)
    before = versions(secrets, arn)
    result = runner.invoke(app, ["secret", "rotate", "--env", "dev", "--no-wait", "--endpoint-url", moto_endpoint])
    assert result.exit_code == 0, result.output
    started = set(versions(secrets, arn)) - set(before)
    assert len(started) == 1, "one rotation, one new version"
    assert arn in result.output and started.pop() in result.output


def test_rotate_dry_run_names_the_secret_and_starts_nothing(moto_endpoint: str, secrets: Any) -> None:
    arn = app_secret(secrets)
    before = versions(secrets, arn)
    result = runner.invoke(
        app, ["secret", "rotate", "--env", "prod", "--secret-id", arn, "--dry-run", "--endpoint-url", moto_endpoint]
    )
    assert result.exit_code == 0, result.output
    assert "would start a rotation" in result.output and arn in result.output
    assert versions(secrets, arn) == before


def test_rotate_follows_a_rotation_already_under_way_and_fails_when_it_times_out(
    moto_endpoint: str, secrets: Any
) -> None:
    arn = app_secret(secrets)
    token = begin_rotation(secrets, arn)
    before = versions(secrets, arn)
    result = runner.invoke(
        app, ["secret", "rotate", "-e", "dev", "--secret-id", arn, "--timeout", "1", "--endpoint-url", moto_endpoint]
    )
    assert result.exit_code == 1, result.output
    assert "already under way" in result.output and token in result.output
    assert f"still {PENDING}" in result.output
    assert versions(secrets, arn) == before, "no second rotation was started"


def test_rotate_refuses_a_secret_without_rotation(moto_endpoint: str, secrets: Any) -> None:
    arn = app_secret(secrets, rotation_enabled=False)
    before = versions(secrets, arn)
    result = runner.invoke(app, ["secret", "rotate", "-e", "qa", "--secret-id", arn, "--endpoint-url", moto_endpoint])
    assert result.exit_code == 1, result.output
    assert "rotation is not enabled" in result.output
    assert versions(secrets, arn) == before


def test_rotate_says_so_when_the_environment_has_no_stack(moto_endpoint: str) -> None:
    result = runner.invoke(app, ["secret", "rotate", "-e", "stage", "--no-wait", "--endpoint-url", moto_endpoint])
    assert result.exit_code == 1, result.output
    assert "no stack skycart-stage" in result.output


def test_rotate_refuses_an_unknown_environment(moto_endpoint: str) -> None:
    result = runner.invoke(app, ["secret", "rotate", "-e", "test", "--endpoint-url", moto_endpoint])
    assert result.exit_code == 2
    assert "unknown environment" in result.output


def test_follow_returns_once_the_rotation_steps_make_the_new_version_current(rig: Rig) -> None:
    token = rig.begin()
    steps = iter(STEPS)
    seen: list[list[str]] = []

    def run_next_step(stages: list[str]) -> None:
        seen.append(stages)
        step = next(steps, None)
        if step is not None:
            rig.step(step, token)

    rotation.follow_rotation(
        secrets=rig.secrets, secret_id=rig.arn, version_id=token, timeout=30, interval=0.01, on_poll=run_next_step
    )
    assert seen[0] == [PENDING] and CURRENT in seen[-1]
    assert len(seen) == len(STEPS) + 1, "it polled until the step after finishSecret, and no longer"
    assert rig.value(CURRENT)["username"] == f"{rig.user}_clone"


def test_follow_stops_when_the_version_loses_its_labels(secrets: Any) -> None:
    arn = app_secret(secrets)
    token = begin_rotation(secrets, arn)

    def replace_the_rotation(stages: list[str]) -> None:
        if stages:
            secrets.update_secret_version_stage(SecretId=arn, VersionStage=PENDING, RemoveFromVersionId=token)

    with pytest.raises(rotation.RotationAbandoned):
        rotation.follow_rotation(
            secrets=secrets, secret_id=arn, version_id=token, timeout=30, interval=0.01, on_poll=replace_the_rotation
        )
