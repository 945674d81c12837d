"""Every AWS-facing verb of `skycart-deploy` takes its region from the standard chain, and without one stops
at once with one line and exit code 2 (the console script itself, as a pipeline job runs it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from skycart_deploy import aws

VERBS = [
    ["stack", "deploy", "--env", "dev"],
    ["stack", "package", "--bucket", "artifacts"],
    ["secret", "rotate", "--env", "dev"],
    ["service", "deploy", "--env", "dev", "--image", "skycart/dev:0123abcd"],
    [
        "api",
        "deploy",
        "--rest-api-id",
        "abc123",
        "--bucket",
        "artifacts",
        "--spec",
        "{spec}",
        "--backend-url",
        "https://x",
    ],
    ["image", "push", "--repository", "skycart/dev", "--tag", "0123abcd"],
]


def _no_region(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE")}
    return {**env, "AWS_CONFIG_FILE": str(tmp_path / "no-config"), "COLUMNS": "200", "NO_COLOR": "1"}


@pytest.mark.parametrize("verb", VERBS, ids=lambda verb: " ".join(verb[:2]))
def test_without_a_region_a_verb_exits_2_with_one_line(tmp_path: Path, verb: list[str]) -> None:
    script = shutil.which("skycart-deploy", path=str(Path(sys.executable).parent))
    assert script is not None
    spec = tmp_path / "openapi.json"
    spec.write_text("{}")
    verb = [part.replace("{spec}", str(spec)) for part in verb]
    result = subprocess.run([script, *verb], env=_no_region(tmp_path), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        "skycart-deploy: no AWS region: pass --region or set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region)"
    ], result.stderr


def test_the_region_is_given_then_aws_region_then_boto3s_chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in _no_region(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(aws.NoRegion):
        aws.region()
    (tmp_path / "no-config").write_text("[default]\nregion = ca-central-1\n")
    assert aws.region() == "ca-central-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-south-1")
    assert aws.region() == "eu-south-1"
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert aws.region() == "eu-west-1"
    assert aws.region("us-east-2") == "us-east-2"
    assert aws.client("cloudformation").meta.region_name == "eu-west-1"
