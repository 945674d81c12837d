"""cfn-lint and checkov: every template clean, and `skycart-deploy stack lint` fails on a bad one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skycart_deploy import stacks
from skycart_deploy.cli import app
from tests.conftest import service_missing
from tests.infra.templates import TEMPLATE_DIR, template_files

REPO = TEMPLATE_DIR.parents[1]
CHECKOV = REPO / ".venv-tools" / "bin" / "checkov"

# A bucket with neither encryption nor a public access block, and a property CloudFormation doesn't know.
UNSAFE_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      VersioningConfiguration:
        Status: Enabled
      Versioning: true
"""


@pytest.fixture(scope="module")
def checkov() -> Path:
    if not CHECKOV.is_file():
        service_missing(f"checkov ({CHECKOV.relative_to(REPO)}; `make .venv-tools/.installed-checkov`)")
    return CHECKOV


@pytest.mark.parametrize("file_name", template_files())
def test_cfn_lint_finds_no_error_or_warning(file_name: str) -> None:
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(TEMPLATE_DIR / file_name, ManualArgs(regions=["us-east-1", "eu-west-1"]))

    assert [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches] == []


def test_checkov_passes_on_the_template_folder(checkov: Path) -> None:
    finished = subprocess.run(
        [str(checkov), "-d", "infra/cloudformation", "--framework", "cloudformation", "--skip-download", "-o", "json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )

    report = json.loads(finished.stdout)
    failed = [f"{c['check_id']} {c['resource']} {c['file_path']}" for c in report["results"]["failed_checks"]]
    assert failed == [] and finished.returncode == 0, finished.stderr[-2000:]
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["resource_count"] > 100, "checkov read fewer resources than the templates hold"


def test_every_checkov_skip_says_why() -> None:
    skips = []
    for file_name in template_files():
        for logical_id, resource in stacks.load_templates(TEMPLATE_DIR)[file_name]["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                skips.append((file_name, logical_id, skip["id"], skip.get("comment", "")))

    assert skips, "no skips at all: then this test and the README's list can go"
    assert [s for s in skips if len(s[3].split()) < 8] == [], "each skip explains itself in a sentence"
    readme = (REPO / "infra" / "README.md").read_text(encoding="utf-8")
    assert [s for s in skips if s[2] not in readme or s[1] not in readme] == [], "infra/README.md lists every skip"


def test_stack_lint_reports_both_tools_findings_and_exits_non_zero(tmp_path: Path, checkov: Path) -> None:
    (tmp_path / "unsafe.yaml").write_text(UNSAFE_TEMPLATE, encoding="utf-8")

    result = CliRunner().invoke(app, ["stack", "lint", "--templates", str(tmp_path), "--checkov", str(checkov)])

    assert result.exit_code == 1, result.output
    assert "cfn-lint E3002" in result.output  # Versioning is not a bucket property
    assert "checkov CKV_AWS_" in result.output


def test_stack_lint_passes_on_the_templates_wherever_it_is_run_from(checkov: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("skycart-deploy")), "stack", "lint", "--templates", str(TEMPLATE_DIR)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "clean: cfn-lint, checkov" in result.stdout
