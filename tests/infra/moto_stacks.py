"""Deploying the templates to a moto server: what moto's CloudFormation can create, as the root stack would.

Moto's CloudFormation does not do everything these templates use. How the smoke deploy gets around
it, and what covers the rest (the policy tests in test_security, test_environments, test_service):

- The root stack is not deployed, since it would deploy data.yaml: moto silently skips
  AWS::RDS::DBCluster, AWS::ElastiCache::ReplicationGroup and AWS::SecretsManager::Secret and answers
  500 to the outputs that GetAtt them. Instead each nested stack moto can handle is deployed on its
  own, with exactly the parameters the root hands it (`skycart_deploy.stacks.nested_stack_parameters`),
  each stack's outputs feeding the next, and data.yaml's outputs replaced by stand-ins made through
  moto's own APIs (secrets, a bucket). The root's KMS key is a stand-in too.
- Moto has no Fn::Cidr: the deployed variant has it resolved with `ipaddress`, as CloudFormation would.
- Moto cannot GetAtt LoadBalancerFullName, TargetGroupFullName or a subnet's AvailabilityZone: those
  outputs are left out of the variant, and the stacks that take them get stand-ins.
- Moto's REST API ignores the OpenAPI body, so the bootstrap Deployment (which needs a method) is left out.
- Whatever else moto skips must be a type listed in MOTO_SKIPS; the smoke test fails on any other gap.
"""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from dataclasses import dataclass, field
from typing import Any

import boto3

from skycart_deploy import stacks
from skycart_deploy.cfn import Unresolved, evaluate, load_template, scope_for
from tests.infra.templates import BOOTSTRAP, BOOTSTRAP_PARAMETERS, TEMPLATE_DIR

REGION = "eu-west-1"
MOTO_SKIPS = {
    "AWS::ApiGateway::Account",
    "AWS::ApiGateway::Stage",
    "AWS::ApiGateway::UsagePlan",
    "AWS::ApiGatewayV2::VpcLink",
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::CloudWatch::Alarm",
    "AWS::EC2::SecurityGroupEgress",
    "AWS::IAM::OIDCProvider",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::Subscription",
    "AWS::SQS::QueuePolicy",
    "AWS::SecretsManager::RotationSchedule",
}
MOTO_MISSING_OUTPUTS = {
    "network.yaml": {"AvailabilityZones"},
    "service.yaml": {"LoadBalancerFullName", "TargetGroupFullName"},
}
MOTO_MISSING_RESOURCES = {"api.yaml": {"BootstrapDeployment"}}
# Nested stacks in deployment order, by logical id in the root template; Data is never deployed.
DEPLOY_ORDER = ("Network", "Service", "Rotation", "Api", "Monitoring")


@dataclass
class MotoAccount:
    """One account on a moto server, of its own: moto keys state by the account the credentials belong to."""

    endpoint: str
    account_id: str = field(default_factory=lambda: f"{secrets.randbelow(10**12):012d}")
    _credentials: dict[str, str] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        self.credentials()
        return self._client(service, self._credentials)

    def credentials(self) -> dict[str, str]:
        """Temporary credentials of a role in this account (boto3 keyword names), as a task role hands out."""
        if not self._credentials:
            sts = self._client("sts", {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"})
            assumed = sts.assume_role(RoleArn=f"arn:aws:iam::{self.account_id}:role/smoke", RoleSessionName="infra")
            self._credentials = {
                "aws_access_key_id": assumed["Credentials"]["AccessKeyId"],
                "aws_secret_access_key": assumed["Credentials"]["SecretAccessKey"],
                "aws_session_token": assumed["Credentials"]["SessionToken"],
            }
        return dict(self._credentials)

    def _client(self, service: str, credentials: dict[str, str]) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION, **credentials)


@dataclass
class DeployedEnvironment:
    environment: str
    stack_names: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    stand_ins: dict[str, str] = field(default_factory=dict)
    root_parameters: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def handed(self, logical_id: str, **root_overrides: Any) -> dict[str, Any]:
        """What the root stack would pass nested stack `logical_id`, given what is deployed so far."""
        return stacks.nested_stack_parameters(
            self.environment,
            TEMPLATE_DIR,
            parameters={**self.root_parameters, **root_overrides},
            attributes=self.attributes,
        )[logical_id]


def moto_variant(file_name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """The template as moto can deploy it (see the module docstring)."""
    template = load_template(TEMPLATE_DIR / file_name)
    scope = scope_for(template, parameters)

    def resolve_cidr(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"Fn::Cidr"}:
                return evaluate(node, scope)
            return {key: resolve_cidr(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve_cidr(item) for item in node]
        return node

    variant = resolve_cidr(template)
    for output in MOTO_MISSING_OUTPUTS.get(file_name, ()):
        del variant["Outputs"][output]
    for resource in MOTO_MISSING_RESOURCES.get(file_name, ()):
        del variant["Resources"][resource]
    return variant


def _parameter_list(parameters: dict[str, Any]) -> list[dict[str, str]]:
    unresolved = {name: value for name, value in parameters.items() if isinstance(value, Unresolved)}
    assert not unresolved, f"nothing supplies {unresolved}"
    return [{"ParameterKey": name, "ParameterValue": str(value)} for name, value in parameters.items()]


def create_stack(account: MotoAccount, name: str, file_name: str, parameters: dict[str, Any]) -> dict[str, str]:
    cloudformation = account.client("cloudformation")
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=json.dumps(moto_variant(file_name, parameters)),
        Parameters=_parameter_list(parameters),
        Capabilities=["CAPABILITY_IAM"],
    )
    (stack,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def update_stack(account: MotoAccount, name: str, file_name: str, parameters: dict[str, Any]) -> None:
    cloudformation = account.client("cloudformation")
    cloudformation.update_stack(
        StackName=name,
        TemplateBody=json.dumps(moto_variant(file_name, parameters)),
        Parameters=_parameter_list(parameters),
        Capabilities=["CAPABILITY_IAM"],
    )
    (stack,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
    assert stack["StackStatus"] == "UPDATE_COMPLETE", stack.get("StackStatusReason")


def _lambda_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    return buffer.getvalue()


def deploy_environment(
    account: MotoAccount,
    environment: str,
    *,
    nested: tuple[str, ...] = DEPLOY_ORDER,
    with_bootstrap: bool = True,
    manage_account_singletons: bool = False,
) -> DeployedEnvironment:
    """Bootstrap (optional), stand-ins for what moto cannot create, then the nested stacks in order."""
    deployed = DeployedEnvironment(environment)
    s3 = account.client("s3")
    if with_bootstrap:
        bootstrap = {
            **BOOTSTRAP_PARAMETERS,
            "Environment": environment,
            "ManageAccountSingletons": "true" if manage_account_singletons else "false",
        }
        name = f"skycart-bootstrap-{environment}"
        deployed.outputs[BOOTSTRAP] = create_stack(account, name, BOOTSTRAP, bootstrap)
        deployed.parameters[BOOTSTRAP] = bootstrap
        deployed.stack_names[BOOTSTRAP] = name
        repository = deployed.outputs[BOOTSTRAP]["ImageRepositoryName"]
        artifacts = deployed.outputs[BOOTSTRAP]["ArtifactBucketName"]
    else:
        repository, artifacts = f"skycart/{environment}", f"artifacts-{environment}"
        s3.create_bucket(Bucket=artifacts, CreateBucketConfiguration={"LocationConstraint": REGION})
    for key in ("lambda/api_deployer.zip", "lambda/db_secret_rotation.zip"):
        s3.put_object(Bucket=artifacts, Key=key, Body=_lambda_zip())

    secret_store = account.client("secretsmanager")
    assets = f"assets-{environment}"
    s3.create_bucket(Bucket=assets, CreateBucketConfiguration={"LocationConstraint": REGION})
    deployed.stand_ins = {
        "EnvironmentKey": account.client("kms").create_key()["KeyMetadata"]["Arn"],
        "AssetsBucketName": assets,
        "DatabaseSecretArn": secret_store.create_secret(Name=f"{environment}/db", SecretString="{}")["ARN"],
        "DatabaseMasterSecretArn": secret_store.create_secret(Name=f"{environment}/db-admin", SecretString="{}")["ARN"],
        "RedisUrlSecretArn": secret_store.create_secret(Name=f"{environment}/redis-url", SecretString="-")["ARN"],
        "CertificateArn": account.client("acm").request_certificate(DomainName="api.internal.example")[
            "CertificateArn"
        ],
    }
    deployed.root_parameters = {
        "TemplateBaseUrl": "https://artifacts.example/templates/0123abcd",
        "ImageRepositoryName": repository,
        "ImageTag": "0123abcd",
        "ArtifactBucket": artifacts,
        "ApiDeployerCodeKey": "lambda/api_deployer.zip",
        "SecretRotationCodeKey": "lambda/db_secret_rotation.zip",
        "CertificateArn": deployed.stand_ins["CertificateArn"],
        "BackendHostName": "api.internal.example",
        "InitialDesiredCount": stacks.environment_config(environment, TEMPLATE_DIR)["MinTasks"],
        "OnCallUrl": "https://paging.example/hook",
    }
    deployed.attributes = attributes = {
        "EnvironmentKey": {"Arn": deployed.stand_ins["EnvironmentKey"]},
        "Data": {
            "Outputs.AssetsBucketName": assets,
            "Outputs.DatabaseSecretArn": deployed.stand_ins["DatabaseSecretArn"],
            "Outputs.DatabaseMasterSecretArn": deployed.stand_ins["DatabaseMasterSecretArn"],
            "Outputs.RedisUrlSecretArn": deployed.stand_ins["RedisUrlSecretArn"],
            "Outputs.DatabaseClusterId": f"skycart-{environment}-db",
            "Outputs.CacheReplicationGroupId": f"skycart-{environment}-cache",
        },
    }
    files = stacks.nested_stacks(load_template(TEMPLATE_DIR / stacks.ROOT_TEMPLATE))
    for logical_id in nested:
        name = f"skycart-{environment}-{logical_id.lower()}"
        deployed.parameters[files[logical_id]] = deployed.handed(logical_id)
        outputs = create_stack(account, name, files[logical_id], deployed.parameters[files[logical_id]])
        deployed.stack_names[files[logical_id]] = name
        deployed.outputs[files[logical_id]] = outputs
        attributes[logical_id] = {f"Outputs.{key}": value for key, value in outputs.items()}
        for missing in MOTO_MISSING_OUTPUTS.get(files[logical_id], ()):
            attributes[logical_id][f"Outputs.{missing}"] = f"moto-has-no-{missing}"
        if logical_id == "Api":
            attributes[logical_id]["Outputs.StageName"] = "live"  # Ref to a stage moto skipped
    return deployed
