"""`stack package` and `stack deploy --package-bucket` against moto's S3: reproducible Lambda zips that import
without the CLI's dependencies, content-hashed keys uploaded once, and parameters that point at them."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from skycart_deploy import packaging
from skycart_deploy.cli import app

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning", "ignore:Exception(.*) with code")
REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "infra" / "cloudformation"
SOURCES = REPO / "src" / "skycart_deploy"
BUCKET = "skycart-bootstrap-dev-artifactbucket-1a2b3c"
REGION = "eu-central-1"
NESTED = ("api.yaml", "data.yaml", "monitoring.yaml", "network.yaml", "rotation.yaml", "service.yaml")
ROTATION_HANDLER = "skycart_deploy/lambdas/db_secret_rotation.py"
WIDE = {"COLUMNS": "250", "NO_COLOR": "1"}
# Imports a Lambda must never need: the CLI's, the app's, and PyYAML (none is in the Lambda runtime).
BLOCKED = ("typer", "rich", "click", "yaml", "fastapi", "starlette", "pydantic", "sqlalchemy", "skycart")
IMPORT_BLOCKED = """
import importlib, importlib.abc, json, sys

folder, module_name, blocked = sys.argv[1], sys.argv[2], set(sys.argv[3].split(","))

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"{name} is not in the Lambda", name=name)
        return None

sys.meta_path.insert(0, Refuse())
sys.path.insert(0, folder)
module = importlib.import_module(module_name)
loaded = {name: mod.__file__ for name, mod in sys.modules.items() if name.startswith("skycart_deploy")}
print(json.dumps({"handler": callable(module.handler), "loaded": loaded}))
"""
ROOT = """
Parameters:
  Environment: {Type: String}
  TemplateBaseUrl: {Type: String}
  ArtifactBucket: {Type: String}
  ApiDeployerCodeKey: {Type: String}
  SecretRotationCodeKey: {Type: String}
Resources:
  Orders:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: !Sub "${TemplateBaseUrl}/orders.yaml"
      Parameters:
        Environment: !Ref Environment
"""
ORDERS = """
Parameters:
  Environment: {Type: String}
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "orders-${Environment}"
"""


@pytest.fixture
def s3(fresh_moto: str) -> Any:
    client = boto3.client("s3", endpoint_url=fresh_moto, region_name=REGION)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    return client


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """A copy of infra/cloudformation that a test may edit; its root template."""
    copy = tmp_path / "cloudformation"
    shutil.copytree(TEMPLATES, copy)
    return copy / "skycart.yaml"


def keys(s3: Any) -> set[str]:
    return {item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def zip_of(name: str) -> bytes:
    return packaging.lambda_zip(next(function for function in packaging.LAMBDAS if function.name == name))


def package(arguments: list[str], endpoint: str, template: Path) -> Any:
    command = ["stack", "package", "--bucket", BUCKET, "--template", str(template), "--endpoint-url", endpoint]
    return CliRunner(env=WIDE).invoke(app, [*command, *arguments])


def test_zip_bytes_depend_on_file_contents_only_not_on_times_modes_or_location(tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "skycart_deploy"
    shutil.copytree(SOURCES, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for path in copy.rglob("*.py"):
        path.chmod(0o755)
        os.utime(path, (1_900_000_000, 1_900_000_000))
    script = (
        "import sys; from skycart_deploy import packaging as p; sys.stdout.buffer.write(p.lambda_zip(p.LAMBDAS[1]))"
    )

    elsewhere = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(copy.parent)}, capture_output=True
    )

    assert elsewhere.returncode == 0, elsewhere.stderr.decode()
    assert elsewhere.stdout == zip_of("db-secret-rotation") == zip_of("db-secret-rotation")


def test_zip_entries_are_sorted_with_a_fixed_time_and_mode() -> None:
    entries = zipfile.ZipFile(io.BytesIO(zip_of("api-deployer"))).infolist()

    assert [entry.filename for entry in entries] == sorted(entry.filename for entry in entries)
    assert {(entry.date_time, entry.external_attr >> 16) for entry in entries} == {((1980, 1, 1, 0, 0, 0), 0o100644)}


def test_rotation_zip_holds_pymysql_and_the_handler_modules_but_no_bytecode() -> None:
    names = set(zipfile.ZipFile(io.BytesIO(zip_of("db-secret-rotation"))).namelist())

    assert {"pymysql/__init__.py", "pymysql/connections.py", "pymysql/constants/CLIENT.py"} <= names
    assert {
        "skycart_deploy/__init__.py",
        "skycart_deploy/aws.py",
        "skycart_deploy/lambdas/db_secret_rotation.py",
    } <= names
    assert any(name.endswith(".dist-info/METADATA") for name in names)
    assert not [name for name in names if name.endswith(".pyc") or name.startswith("skycart_deploy/commands/")]


def test_api_deployer_zip_holds_only_the_modules_its_handler_imports() -> None:
    names = set(zipfile.ZipFile(io.BytesIO(zip_of("api-deployer"))).namelist())

    assert names == {
        "skycart_deploy/__init__.py",
        "skycart_deploy/api_gateway.py",
        "skycart_deploy/aws.py",
        "skycart_deploy/lambdas/__init__.py",
        "skycart_deploy/lambdas/api_deployer.py",
        "skycart_deploy/model_names.py",
        "skycart_deploy/openapi.py",
    }


@pytest.mark.parametrize("function", packaging.LAMBDAS, ids=lambda function: function.name)
def test_handler_imports_from_its_extracted_zip_alone_with_cli_and_app_packages_blocked(
    function: packaging.LambdaFunction, tmp_path: Path
) -> None:
    folder = tmp_path / "task"
    zipfile.ZipFile(io.BytesIO(packaging.lambda_zip(function))).extractall(folder)
    blocked = BLOCKED if function.bundled else (*BLOCKED, "pymysql")
    env = {**os.environ, "AWS_DEFAULT_REGION": REGION, "PYTHONPATH": ""}

    finished = subprocess.run(
        [sys.executable, "-c", IMPORT_BLOCKED, str(folder), function.module, ",".join(blocked)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip

    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout)
    assert report["handler"] is True
    assert report["loaded"] and all(path.startswith(str(folder)) for path in report["loaded"].values()), report


def test_the_import_blocker_refuses_what_a_cli_module_needs(tmp_path: Path) -> None:
    # The same check as above on the unpackaged sources, for a module that does import typer: it must fail.
    finished = subprocess.run(
        [sys.executable, "-c", IMPORT_BLOCKED, str(REPO / "src"), "skycart_deploy.commands.stack", ",".join(BLOCKED)],
        capture_output=True, text=True,
    )  # fmt: skip

    assert finished.returncode != 0
    assert "is not in the Lambda" in finished.stderr


def test_a_handler_that_reaches_a_cli_dependency_fails_the_build() -> None:
    cli_module = packaging.LambdaFunction("cli", "skycart_deploy.commands.stack", "CliCodeKey")

    with pytest.raises(packaging.PackagingError, match=r"imports .*rich.*typer.*not in the Lambda runtime"):
        packaging.lambda_zip(cli_module)


def test_nested_templates_are_the_files_the_root_loads_from_template_base_url() -> None:
    assert sorted(packaging.nested_templates(root_template=TEMPLATES / "skycart.yaml")) == list(NESTED)


def test_first_package_uploads_every_artifact_and_the_second_uploads_none(s3: Any, templates: Path) -> None:
    release, first = packaging.package_release(s3, root_template=templates, bucket=BUCKET)
    _, second = packaging.package_release(s3, root_template=templates, bucket=BUCKET)

    assert len(first.put) == len(NESTED) + len(packaging.LAMBDAS) == len(keys(s3))
    assert first.present == []
    assert second.put == []
    assert sorted(second.present) == sorted(first.put) == sorted(keys(s3))
    assert {key.rsplit("/", 1)[0] for key in keys(s3) if key.startswith("templates/")} == {
        "templates/" + packaging.templates_digest(packaging.nested_templates(root_template=templates))
    }
    assert (
        release.code_keys["ApiDeployerCodeKey"]
        == f"lambdas/api-deployer-{packaging.sha256(zip_of('api-deployer'))}.zip"
    )


def test_parameters_point_at_the_uploaded_templates_and_zips(s3: Any, fresh_moto: str, templates: Path) -> None:
    release, _ = packaging.package_release(s3, root_template=templates, bucket=BUCKET)
    parameters = release.parameters

    assert parameters["ArtifactBucket"] == BUCKET
    assert parameters["TemplateBaseUrl"].startswith(f"{fresh_moto}/{BUCKET}/templates/")
    for name in NESTED:
        # The path-style URL CloudFormation fetches for a nested stack names that template's object.
        bucket, key = f"{parameters['TemplateBaseUrl']}/{name}".removeprefix(f"{fresh_moto}/").split("/", 1)
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == (templates.parent / name).read_bytes(), name
    for parameter, name in (("ApiDeployerCodeKey", "api-deployer"), ("SecretRotationCodeKey", "db-secret-rotation")):
        body = s3.get_object(Bucket=BUCKET, Key=parameters[parameter])["Body"].read()
        assert body == zip_of(name), parameter


def test_changing_a_nested_template_changes_template_base_url_but_no_code_key(s3: Any, templates: Path) -> None:
    before, _ = packaging.package_release(s3, root_template=templates, bucket=BUCKET)
    with (templates.parent / "monitoring.yaml").open("a") as file:
        file.write("# one more line\n")

    after, uploaded = packaging.package_release(s3, root_template=templates, bucket=BUCKET)

    assert after.template_base_url != before.template_base_url
    assert after.code_keys == before.code_keys
    assert sorted(uploaded.put) == [f"{after.template_base_url.split(f'/{BUCKET}/', 1)[1]}/{name}" for name in NESTED]


def test_a_root_that_loads_a_missing_template_cannot_be_packaged(s3: Any, templates: Path) -> None:
    (templates.parent / "rotation.yaml").unlink()

    with pytest.raises(packaging.PackagingError, match="rotation.yaml"):
        packaging.package_release(s3, root_template=templates, bucket=BUCKET)
    assert keys(s3) == set()


def test_aws_template_base_url_is_the_virtual_hosted_bucket_url_of_its_region() -> None:
    assert packaging.aws_bucket_url(bucket=BUCKET, region="eu-west-1") == f"https://{BUCKET}.s3.eu-west-1.amazonaws.com"
    assert packaging.aws_bucket_url(bucket=BUCKET, region="cn-north-1").endswith(".s3.cn-north-1.amazonaws.com.cn")


def test_cli_prints_the_parameters_as_key_value_lines_on_stdout(s3: Any, fresh_moto: str, templates: Path) -> None:
    result = package([], fresh_moto, templates)

    assert result.exit_code == 0, result.output
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert list(lines) == ["TemplateBaseUrl", "ArtifactBucket", "ApiDeployerCodeKey", "SecretRotationCodeKey"]
    assert {lines["ApiDeployerCodeKey"], lines["SecretRotationCodeKey"]} <= keys(s3)
    assert f"{BUCKET}: uploaded 8, 0 already there" in result.stderr


def test_cli_dry_run_prints_the_same_parameters_and_uploads_nothing(s3: Any, fresh_moto: str, templates: Path) -> None:
    dry = package(["--dry-run"], fresh_moto, templates)

    assert dry.exit_code == 0, dry.output
    assert keys(s3) == set()
    assert "would upload 8" in dry.stderr
    assert dry.stdout == package([], fresh_moto, templates).stdout


def test_deploy_with_package_bucket_creates_the_stack_from_the_packaged_templates(
    s3: Any, fresh_moto: str, tmp_path: Path
) -> None:
    root = tmp_path / "root.yaml"
    root.write_text(ROOT)
    (tmp_path / "orders.yaml").write_text(ORDERS)
    # moto resolves a nested TemplateURL on its own server only when the host is named "localhost".
    endpoint = fresh_moto.replace("127.0.0.1", "localhost")
    arguments = ["stack", "deploy", "--env", "dev", "--template", str(root), "--package-bucket", BUCKET]

    result = CliRunner(env=WIDE).invoke(app, [*arguments, "--endpoint-url", endpoint, "--poll-seconds", "0.1"])

    assert result.exit_code == 0, result.output
    cloudformation = boto3.client("cloudformation", endpoint_url=fresh_moto, region_name=REGION)
    (stack,) = cloudformation.describe_stacks(StackName="skycart-dev")["Stacks"]
    given = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert given["TemplateBaseUrl"] == f"{endpoint}/{BUCKET}/templates/" + packaging.templates_digest(
        {"orders.yaml": ORDERS.encode()}
    )
    assert {given["ApiDeployerCodeKey"], given["SecretRotationCodeKey"]} <= keys(s3)
    sqs = boto3.client("sqs", endpoint_url=fresh_moto, region_name=REGION)
    assert sqs.get_queue_url(QueueName="orders-dev")["QueueUrl"]


def test_deploy_refuses_a_parameter_that_package_bucket_sets(s3: Any, fresh_moto: str, templates: Path) -> None:
    arguments = ["stack", "deploy", "--env", "dev", "--template", str(templates), "--package-bucket", BUCKET]

    result = CliRunner(env=WIDE).invoke(
        app, [*arguments, "--parameter", "ArtifactBucket=other", "--endpoint-url", fresh_moto]
    )

    assert result.exit_code == 2
    assert "ArtifactBucket come from --package-bucket" in result.output
    assert keys(s3) == set()
