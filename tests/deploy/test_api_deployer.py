"""The API deployer against moto server: deploy once, skip an unchanged document, refuse what cannot be imported."""

from __future__ import annotations

import importlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from skycart_deploy import api_gateway, aws, openapi
from skycart_deploy.api_gateway import Backend, DeployResult, SpecTooLarge, deploy_api, with_backoff
from skycart_deploy.cfn import load_template
from skycart_deploy.cli import app

API_TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "cloudformation" / "api.yaml"
BACKEND = Backend(
    base_url="https://api.internal.example",
    vpc_link_id="vl0123abc",
    integration_target_arn="arn:aws:elasticloadbalancing:eu-central-1:123456789012:loadbalancer/app/skycart/0123",
)
SPEC_KEY = "openapi/skycart.json"


@dataclass(frozen=True)
class Environment:
    """One environment's API front door in moto, as api.yaml leaves it before the first deployer run."""

    s3: Any
    apigateway: Any
    rest_api_id: str
    bucket: str
    endpoint: str

    def deploy(self, spec: dict[str, Any], **overrides: Any) -> DeployResult:
        arguments = {"stage": "live", "bucket": self.bucket, "backend": BACKEND, "spec": spec, **overrides}
        return deploy_api(s3=self.s3, apigateway=self.apigateway, rest_api_id=self.rest_api_id, **arguments)

    def deployment_count(self) -> int:
        return len(self.apigateway.get_deployments(restApiId=self.rest_api_id)["items"])

    def stage_deployment(self) -> str:
        return self.apigateway.get_stage(restApiId=self.rest_api_id, stageName="live")["deploymentId"]

    def paths(self) -> set[str]:
        return {resource["path"] for resource in self.apigateway.get_resources(restApiId=self.rest_api_id)["items"]}


@pytest.fixture(scope="module")
def app_spec() -> dict[str, Any]:
    return openapi.app_document()


@pytest.fixture
def environment(moto_endpoint: str) -> Environment:
    s3 = aws.client("s3", moto_endpoint)
    apigateway = aws.client("apigateway", moto_endpoint)
    # moto's state outlives one server: every test gets its own names.
    bucket = f"skycart-dev-spec-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    api_id = apigateway.create_rest_api(name="skycart-dev-Api", apiKeySource="HEADER")["id"]
    _bootstrap(apigateway, api_id)
    apigateway.create_deployment(restApiId=api_id, stageName="live", description="bootstrap (CloudFormation)")
    return Environment(s3, apigateway, api_id, bucket, moto_endpoint)


def _bootstrap(apigateway: Any, api_id: str) -> None:
    """api.yaml's bootstrap body, built call by call: moto cannot import a mock integration without a uri."""
    body = load_template(API_TEMPLATE)["Resources"]["RestApi"]["Properties"]["Body"]
    ((path, item),) = body["paths"].items()
    ((method, operation),) = item.items()
    root = apigateway.get_resources(restApiId=api_id)["items"][0]["id"]
    resource = apigateway.create_resource(restApiId=api_id, parentId=root, pathPart=path.strip("/"))["id"]
    apigateway.put_method(restApiId=api_id, resourceId=resource, httpMethod=method.upper(), authorizationType="NONE")
    mock = operation["x-amazon-apigateway-integration"]
    apigateway.put_integration(
        restApiId=api_id,
        resourceId=resource,
        httpMethod=method.upper(),
        type=mock["type"].upper(),
        requestTemplates=mock["requestTemplates"],
    )


def _tiny_spec(description: str = "Orders.") -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "SkyCart", "version": "1", "description": description},
        "paths": {
            "/v1/orders/{order_id}": {
                "get": {
                    "operationId": "get_order",
                    "parameters": [{"name": "order_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "The order"}},
                    "security": [{"APIKeyHeader": []}],
                }
            }
        },
        "components": {"securitySchemes": {"APIKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}}},
    }


def test_first_run_imports_the_app_spec_with_an_integration_on_every_method(environment, app_spec):
    result = environment.deploy(app_spec)

    assert result.deployed and result.deployment_id == environment.stage_deployment()
    apigateway, api_id = environment.apigateway, environment.rest_api_id
    operations = {
        (path, method.upper()) for path, item in app_spec["paths"].items() for method in item if method != "parameters"
    }
    imported = set()
    for resource in apigateway.get_resources(restApiId=api_id)["items"]:
        for method in resource.get("resourceMethods", {}):
            integration = apigateway.get_integration(restApiId=api_id, resourceId=resource["id"], httpMethod=method)
            # moto keeps the case the document used; API Gateway answers HTTP_PROXY
            assert integration["type"].upper() == "HTTP_PROXY" and integration["connectionType"] == "VPC_LINK"
            assert integration["uri"] == BACKEND.base_url + resource["path"]
            assert integration["httpMethod"] == method
            names = [part[1:-1] for part in resource["path"].split("/") if part.startswith("{")]
            assert integration.get("requestParameters", {}) == {
                f"integration.request.path.{name}": f"method.request.path.{name}" for name in names
            }
            imported.add((resource["path"], method))
    assert imported == operations
    description = apigateway.get_deployment(restApiId=api_id, deploymentId=result.deployment_id)["description"]
    assert f"sha256:{result.sha256}" in description


def test_same_spec_again_neither_imports_nor_deploys(environment, app_spec):
    first = environment.deploy(app_spec)
    deployments = environment.deployment_count()
    # A resource only an overwrite would remove: it survives when nothing is imported.
    root = next(
        r for r in environment.apigateway.get_resources(restApiId=environment.rest_api_id)["items"] if r["path"] == "/"
    )
    environment.apigateway.create_resource(restApiId=environment.rest_api_id, parentId=root["id"], pathPart="sentinel")

    again = environment.deploy(app_spec)

    assert not again.deployed and again.sha256 == first.sha256
    assert again.deployment_id == first.deployment_id and again.reason.startswith("unchanged")
    assert environment.deployment_count() == deployments
    assert "/sentinel" in environment.paths()


def test_changed_spec_creates_exactly_one_new_deployment(environment):
    first = environment.deploy(_tiny_spec())
    deployments = environment.deployment_count()
    changed = _tiny_spec()
    changed["paths"]["/v1/orders"] = {
        "post": {"operationId": "place_order", "responses": {"201": {"description": "x"}}}
    }

    second = environment.deploy(changed)

    assert second.deployed and second.sha256 != first.sha256
    assert environment.deployment_count() == deployments + 1
    assert environment.stage_deployment() == second.deployment_id
    assert "/v1/orders" in environment.paths()


def test_different_stage_variables_deploy_the_same_document_again(environment):
    first = environment.deploy(_tiny_spec())

    second = environment.deploy(_tiny_spec(), stage_variables={"backendTimeout": "29000"})

    assert second.deployed and second.sha256 != first.sha256
    stage = environment.apigateway.get_stage(restApiId=environment.rest_api_id, stageName="live")
    assert stage["variables"] == {"backendTimeout": "29000"}


def test_processed_document_is_archived_and_passes_moto_strict_openapi_30_import(environment, app_spec):
    result = environment.deploy(app_spec)

    stored = environment.s3.get_object(Bucket=environment.bucket, Key=f"processed/{result.sha256}.json")["Body"].read()
    document = json.loads(stored)
    assert document["openapi"].startswith("3.0") and document["info"]["description"]
    # failOnWarnings makes moto validate the body against the OpenAPI 3.0 schema first.
    fresh = environment.apigateway.create_rest_api(name="strict-import")["id"]
    environment.apigateway.put_rest_api(restApiId=fresh, mode="overwrite", failOnWarnings=True, body=stored)
    operations = [op for item in document["paths"].values() for key, op in item.items() if key != "parameters"]
    integrations = [op["x-amazon-apigateway-integration"] for op in operations]
    assert all(i["uri"].startswith(BACKEND.base_url + "/") and i["httpMethod"] for i in integrations)
    assert {i["connectionId"] for i in integrations} == {BACKEND.vpc_link_id}
    assert {i["integrationTarget"] for i in integrations} == {BACKEND.integration_target_arn}
    assert document["components"]["securitySchemes"] == {
        "api_key": {"type": "apiKey", "name": "x-api-key", "in": "header"}
    }
    assert document["x-amazon-apigateway-api-key-source"] == "HEADER"
    assert document["x-amazon-apigateway-request-validator"] in document["x-amazon-apigateway-request-validators"]
    assert "multipart/form-data" in document["x-amazon-apigateway-binary-media-types"]
    secured = [op for op in operations if "security" in op]
    assert secured and all(op["security"] == [{"api_key": []}] for op in secured)
    assert "security" not in document["paths"]["/healthz"]["get"]


def test_dry_run_writes_nothing_and_says_it_would_deploy(environment):
    before = environment.deployment_count()

    result = environment.deploy(_tiny_spec(), dry_run=True)

    assert not result.deployed and result.deployment_id is None and result.reason.startswith("dry run")
    assert environment.deployment_count() == before
    assert environment.s3.list_objects_v2(Bucket=environment.bucket).get("KeyCount") == 0
    assert "/v1/orders/{order_id}" not in environment.paths()


def test_spec_over_six_megabytes_is_refused_before_anything_changes(environment):
    spec = _tiny_spec(description="x" * (6 * 1024 * 1024))
    before = environment.deployment_count()

    with pytest.raises(SpecTooLarge, match=r"API Gateway imports at most 6 MB"):
        environment.deploy(spec)

    assert environment.deployment_count() == before
    assert environment.s3.list_objects_v2(Bucket=environment.bucket).get("KeyCount") == 0


def test_undeclared_path_parameter_is_refused(environment):
    spec = _tiny_spec()
    del spec["paths"]["/v1/orders/{order_id}"]["get"]["parameters"]

    with pytest.raises(ValueError, match=r"path parameters \['order_id'\] are not declared"):
        environment.deploy(spec)


def _throttled(operation: str = "CreateDeployment", **extra: Any) -> ClientError:
    error = {"Error": {"Code": "TooManyRequestsException", "Message": "Too Many Requests"}, **extra}
    return ClientError(error, operation)  # type: ignore[arg-type]


def _answering(answers: list[Any]) -> Any:
    """A call that raises or returns each answer in turn, as API Gateway would answer it."""

    def call() -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return call


def test_backoff_retries_too_many_requests_with_growing_pauses():
    pauses: list[float] = []

    result = with_backoff(_answering([_throttled(), _throttled(), _throttled(), {"id": "d1"}]), sleep=pauses.append)

    assert result == {"id": "d1"} and pauses == [5.0, 10.0, 20.0]


def test_backoff_waits_as_long_as_retry_after_says():
    pauses: list[float] = []

    assert with_backoff(_answering([_throttled(retryAfterSeconds="7"), "ok"]), sleep=pauses.append) == "ok"
    assert pauses == [7.0]


def test_backoff_gives_up_after_its_attempts_with_the_last_error():
    pauses: list[float] = []
    calls: list[int] = []

    def always_throttled() -> None:
        calls.append(1)
        raise _throttled()

    with pytest.raises(ClientError, match="TooManyRequestsException"):
        with_backoff(always_throttled, sleep=pauses.append, attempts=4)
    assert len(calls) == 4 and pauses == [5.0, 10.0, 20.0]


def test_backoff_passes_other_errors_through_at_once(environment):
    pauses: list[float] = []

    def missing_api() -> Any:
        return environment.apigateway.get_rest_api(restApiId="nosuchapi")

    with pytest.raises(ClientError, match="NotFoundException"):
        with_backoff(missing_api, sleep=pauses.append)
    assert pauses == []


def _object_created(bucket: str, key: str, version: str | None) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2025-01-01T00:00:00Z",
        "region": "eu-central-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 1, "etag": "x", "version-id": version, "sequencer": "1"},
            "request-id": "r",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }


@pytest.fixture
def deployer(environment, monkeypatch):
    """The Lambda module after a cold start in this environment (clients built at import)."""
    monkeypatch.setenv(aws.ENDPOINT_ENV, environment.endpoint)
    for name, value in {
        "REST_API_ID": environment.rest_api_id,
        "STAGE_NAME": "live",
        "VPC_LINK_ID": BACKEND.vpc_link_id,
        "INTEGRATION_TARGET_ARN": BACKEND.integration_target_arn,
        "BACKEND_BASE_URL": BACKEND.base_url,
        "SPEC_BUCKET": environment.bucket,
    }.items():
        monkeypatch.setenv(name, value)
    return importlib.reload(importlib.import_module("skycart_deploy.lambdas.api_deployer"))


def test_lambda_deploys_the_uploaded_spec_from_an_eventbridge_event(environment, deployer, app_spec, capsys):
    environment.s3.put_bucket_versioning(Bucket=environment.bucket, VersioningConfiguration={"Status": "Enabled"})
    version = environment.s3.put_object(Bucket=environment.bucket, Key=SPEC_KEY, Body=json.dumps(app_spec))["VersionId"]

    result = deployer.handler(_object_created(environment.bucket, SPEC_KEY, version), None)

    assert result["deployed"] and result["deployment_id"] == environment.stage_deployment()
    (line,) = capsys.readouterr().out.splitlines()
    logged = json.loads(line)
    assert logged["event"] == "api_deploy" and logged["sha256"] == result["sha256"] and logged["key"] == SPEC_KEY
    assert (
        json.loads(
            environment.s3.get_object(Bucket=environment.bucket, Key=f"processed/{result['sha256']}.json")[
                "Body"
            ].read()
        )["paths"]["/healthz"]["get"]["x-amazon-apigateway-integration"]["connectionId"]
        == BACKEND.vpc_link_id
    )


def test_lambda_invoked_directly_with_the_same_spec_changes_nothing(environment, deployer, capsys):
    environment.s3.put_object(Bucket=environment.bucket, Key=SPEC_KEY, Body=json.dumps(_tiny_spec()))
    first = deployer.handler({"key": SPEC_KEY}, None)
    deployments = environment.deployment_count()

    again = deployer.handler({"bucket": environment.bucket, "key": SPEC_KEY}, None)

    assert first["deployed"] and not again["deployed"] and again["sha256"] == first["sha256"]
    assert environment.deployment_count() == deployments


def test_lambda_refuses_a_document_from_another_bucket_and_logs_why(environment, deployer, capsys):
    with pytest.raises(ValueError, match=f"deploys only from {environment.bucket}"):
        deployer.handler(_object_created("someone-elses-bucket", SPEC_KEY, None), None)

    logged = json.loads(capsys.readouterr().out)
    assert logged["event"] == "api_deploy_failed" and "someone-elses-bucket" in logged["error"]


def _cli(environment: Environment, spec_file: Path, *extra: str) -> Any:
    arguments = [
        "api", "deploy", "--rest-api-id", environment.rest_api_id, "--bucket", environment.bucket,
        "--spec", str(spec_file), "--backend-url", BACKEND.base_url, "--vpc-link-id", BACKEND.vpc_link_id,
        "--endpoint-url", environment.endpoint, *extra,
    ]  # fmt: skip
    return CliRunner().invoke(app, arguments, catch_exceptions=False)


def test_cli_dry_run_prints_the_result_as_json_and_deploys_nothing(environment, tmp_path):
    spec_file = tmp_path / "skycart.json"
    spec_file.write_text(json.dumps(_tiny_spec()))
    before = environment.deployment_count()

    outcome = _cli(environment, spec_file, "--dry-run")

    assert outcome.exit_code == 0, outcome.output
    printed = json.loads(outcome.stdout)
    assert set(printed) == {"deployed", "sha256", "deployment_id", "reason"}
    assert printed["deployed"] is False and printed["reason"].startswith("dry run")
    assert environment.deployment_count() == before


def test_cli_deploys_then_reports_the_same_spec_unchanged(environment, tmp_path):
    spec_file = tmp_path / "skycart.json"
    spec_file.write_text(json.dumps(_tiny_spec()))

    first = json.loads(_cli(environment, spec_file).stdout)
    again = json.loads(_cli(environment, spec_file, "--dry-run").stdout)

    assert first["deployed"] and first["deployment_id"] == environment.stage_deployment()
    assert not again["deployed"] and again["reason"].startswith("unchanged") and again["sha256"] == first["sha256"]


def test_cli_refuses_an_unconvertible_spec_with_exit_status_one(environment, tmp_path):
    spec = _tiny_spec()
    spec["webhooks"] = {"orderPlaced": {"post": {"responses": {"200": {"description": "ok"}}}}}
    spec_file = tmp_path / "skycart.json"
    spec_file.write_text(json.dumps(spec))

    outcome = _cli(environment, spec_file)

    assert outcome.exit_code == 1 and "webhooks have no OpenAPI 3.0 form" in outcome.stderr
    assert api_gateway.PROCESSED_PREFIX not in json.dumps(environment.s3.list_objects_v2(Bucket=environment.bucket))
