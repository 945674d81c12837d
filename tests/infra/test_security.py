"""Security policies over the parsed templates: encryption at rest, no secret values, least privilege,
the security-group chain, and CI access through OIDC only."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from skycart_deploy.cfn import evaluate, scope_for
from tests.infra.templates import (
    BOOTSTRAP,
    BOOTSTRAP_PARAMETERS,
    ENVIRONMENTS,
    all_resources,
    resources,
    strings,
    template,
    template_files,
)

ENCRYPTED_AT_REST: dict[str, Callable[[dict[str, Any]], bool]] = {
    "AWS::S3::Bucket": lambda p: (
        p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
        in ("aws:kms", "AES256")
    ),
    "AWS::RDS::DBCluster": lambda p: p["StorageEncrypted"] is True and bool(p["KmsKeyId"]),
    "AWS::RDS::DBInstance": lambda p: p["EnablePerformanceInsights"] is False or bool(p["PerformanceInsightsKMSKeyId"]),
    "AWS::ElastiCache::ReplicationGroup": lambda p: (
        p["AtRestEncryptionEnabled"] is True and p["TransitEncryptionEnabled"] is True and bool(p["KmsKeyId"])
    ),
    "AWS::SecretsManager::Secret": lambda p: bool(p["KmsKeyId"]),
    "AWS::Logs::LogGroup": lambda p: bool(p["KmsKeyId"]),
    "AWS::SNS::Topic": lambda p: bool(p["KmsMasterKeyId"]),
    "AWS::SQS::Queue": lambda p: bool(p["KmsMasterKeyId"]),
    "AWS::Lambda::Function": lambda p: bool(p["KmsKeyArn"]),
    "AWS::ECR::Repository": lambda p: p["EncryptionConfiguration"]["EncryptionType"] == "KMS",
    "AWS::KMS::Key": lambda p: p["EnableKeyRotation"] is True,
}
# Types that keep no data of their own (configuration, wiring, compute, metrics).
HOLDS_NO_DATA = {
    "AWS::ApiGateway::Account",
    "AWS::ApiGateway::Deployment",
    "AWS::ApiGateway::RestApi",
    "AWS::ApiGateway::Stage",
    "AWS::ApiGateway::UsagePlan",
    "AWS::ApiGatewayV2::VpcLink",
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::CloudFormation::Stack",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
    "AWS::EC2::EIP",
    "AWS::EC2::FlowLog",
    "AWS::EC2::InternetGateway",
    "AWS::EC2::NatGateway",
    "AWS::EC2::Route",
    "AWS::EC2::RouteTable",
    "AWS::EC2::SecurityGroup",
    "AWS::EC2::SecurityGroupEgress",
    "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::Subnet",
    "AWS::EC2::SubnetRouteTableAssociation",
    "AWS::EC2::VPC",
    "AWS::EC2::VPCGatewayAttachment",
    "AWS::ECS::Cluster",
    "AWS::ECS::Service",
    "AWS::ECS::TaskDefinition",
    "AWS::ElastiCache::SubnetGroup",
    "AWS::ElasticLoadBalancingV2::Listener",
    "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "AWS::ElasticLoadBalancingV2::TargetGroup",
    "AWS::Events::Rule",
    "AWS::IAM::OIDCProvider",
    "AWS::IAM::Role",
    "AWS::Lambda::Permission",
    "AWS::RDS::DBClusterParameterGroup",
    "AWS::RDS::DBSubnetGroup",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::Subscription",
    "AWS::SQS::QueuePolicy",
    "AWS::SecretsManager::RotationSchedule",
}
SECRET_WORDS = {"password", "passwd", "secret", "token", "credential", "credentials"}
SECRET_PAIRS = {"apikey", "privatekey", "accesskey", "secretkey"}
SECRET_PROPERTIES = {"MasterUserPassword", "Password", "AuthToken", "SecretString", "SecretAccessKey"}
SECRET_SETTINGS = {"SKYCART_DB_SECRET", "SKYCART_REDIS_URL", "SKYCART_DATABASE_URL"}


def names_a_secret(name: str) -> bool:
    """Whether a parameter or variable name says it holds a secret (SKYCART_DB_SECRET, AuthToken), not a pointer."""
    words = [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+", name)]
    return bool(words) and (words[-1] in SECRET_WORDS or "".join(words[-2:]) in SECRET_PAIRS)


def environment_files() -> list[str]:
    return template_files()


def entries(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair anywhere in `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from entries(value)
    elif isinstance(node, list):
        for item in node:
            yield from entries(item)


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in role["Properties"].get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_every_resource_type_is_either_encrypted_or_holds_no_data() -> None:
    types = {resource["Type"] for _, _, resource in all_resources()}

    undecided = types - ENCRYPTED_AT_REST.keys() - HOLDS_NO_DATA

    assert undecided == set(), "decide: how is it encrypted at rest (ENCRYPTED_AT_REST), or does it hold no data?"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_everything_that_stores_data_is_encrypted_at_rest(environment: str) -> None:
    checked, unencrypted = 0, []
    for file_name in environment_files():
        for logical_id, resource in resources(environment, file_name).items():
            check = ENCRYPTED_AT_REST.get(resource["Type"])
            if check:
                checked += 1
                if not check(resource["Properties"]):
                    unencrypted.append(f"{file_name}:{logical_id}")

    assert unencrypted == []
    assert checked >= 15


def test_secret_names_are_recognised() -> None:
    assert [
        n for n in ("SKYCART_DB_SECRET", "AuthToken", "MasterPassword", "GitLabApiKey") if not names_a_secret(n)
    ] == []
    assert [
        n for n in ("DatabaseSecretArn", "SecretRotationCodeKey", "SECRET_ROTATION_ENDPOINT") if names_a_secret(n)
    ] == []


def test_no_parameter_takes_a_secret_value() -> None:
    named_like_secrets = [
        f"{file_name}:{name}"
        for file_name in template_files()
        for name in template(file_name).get("Parameters", {})
        if names_a_secret(name)
    ]

    assert named_like_secrets == [], "pass an ARN (a pointer), never the secret itself"


def test_no_secret_value_is_written_into_a_template() -> None:
    literal = []
    for file_name in template_files():
        loaded = template(file_name)
        for key, value in entries(loaded):
            if key in SECRET_PROPERTIES and not str(value).count("{{resolve:secretsmanager:"):
                literal.append(f"{file_name}: {key}")
        for text in strings(loaded):
            if re.search(r"AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY", text):
                literal.append(f"{file_name}: {text[:40]}")

    assert literal == []


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_secrets_reach_the_app_only_through_ecs_secrets(environment: str) -> None:
    (task,) = resources(environment, "service.yaml", "AWS::ECS::TaskDefinition").values()
    (container,) = task["Properties"]["ContainerDefinitions"]
    raw = template("service.yaml")["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]

    plain = {entry["Name"]: entry["Value"] for entry in container["Environment"]}
    assert SECRET_SETTINGS.isdisjoint(plain)
    assert [name for name in plain if names_a_secret(name)] == []
    assert [value for value in strings(raw["Environment"]) if "{{resolve:" in value] == []
    assert {entry["Name"]: entry["ValueFrom"] for entry in raw["Secrets"]} == {
        "SKYCART_DB_SECRET": {"Ref": "DatabaseSecretArn"},
        "SKYCART_REDIS_URL": {"Ref": "RedisUrlSecretArn"},
    }


def test_lambda_environments_hold_no_secrets() -> None:
    for _, logical_id, resource in all_resources():
        if resource["Type"] == "AWS::Lambda::Function":
            variables = resource["Properties"].get("Environment", {}).get("Variables", {})
            assert [name for name in variables if names_a_secret(name)] == [], logical_id
            assert [v for v in strings(variables) if "{{resolve:" in v] == [], logical_id


def test_task_role_reaches_only_its_bucket_log_group_and_secret() -> None:
    role = template("service.yaml")["Resources"]["TaskRole"]
    allowed = [
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::${AssetsBucketName}/*"},
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::${AssetsBucketName}"},
        {"Fn::GetAtt": ["AppLogGroup", "Arn"]},
        {"Ref": "DatabaseSecretArn"},
        {"Ref": "KmsKeyArn"},  # the bucket's SSE-KMS key
    ]

    granted = [(s["Action"], resource) for s in statements(role) for resource in as_list(s["Resource"])]

    assert granted and [r for _, r in granted if r not in allowed] == []
    assert [a for a, _ in granted for action in as_list(a) if action.endswith("*")] == []
    assert "ManagedPolicyArns" not in role["Properties"]
    root = template("skycart.yaml")["Resources"]["Service"]["Properties"]["Parameters"]
    assert root["AssetsBucketName"] == {"Fn::GetAtt": ["Data", "Outputs.AssetsBucketName"]}


def test_execution_role_pulls_one_repository_and_reads_only_the_app_secrets() -> None:
    role = template("service.yaml")["Resources"]["ExecutionRole"]
    allowed = [
        {"Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/${ImageRepositoryName}"},
        # The awslogs driver writes the boot log group only: the app ships its own lines to AppLogGroup.
        {"Fn::GetAtt": ["BootLogGroup", "Arn"]},
        {"Ref": "DatabaseSecretArn"},
        {"Ref": "RedisUrlSecretArn"},
        {"Ref": "KmsKeyArn"},
    ]

    for statement in statements(role):
        for resource in as_list(statement["Resource"]):
            assert resource in allowed or (resource == "*" and statement["Action"] == "ecr:GetAuthorizationToken")


# Actions that have no resource-level permissions, so "*" is the only possible Resource.
UNSCOPABLE = {
    "ecr:GetAuthorizationToken",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "secretsmanager:GetRandomPassword",
}
# "*" narrowed by a condition key instead.
CONDITIONED = {"iam:CreateServiceLinkedRole", "ecs:DescribeServices", "ecs:DescribeTaskDefinition"}


def test_no_role_grants_wildcard_actions_or_unscoped_resources() -> None:
    loose = []
    for file_name, logical_id, resource in all_resources():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for statement in statements(resource):
            actions = as_list(statement["Action"])
            if any(action == "*" or action.endswith(":*") for action in actions):
                loose.append(f"{file_name}:{logical_id} {actions}")
            if "*" in as_list(statement["Resource"]):
                allowed = UNSCOPABLE | (CONDITIONED if "Condition" in statement else set())
                if not set(actions) <= allowed:
                    loose.append(f"{file_name}:{logical_id} {actions} on *")

    assert loose == []


def test_images_are_scanned_on_push_and_tags_never_move() -> None:
    repository = template(BOOTSTRAP)["Resources"]["ImageRepository"]["Properties"]
    lifecycle = json.loads(repository["LifecyclePolicy"]["LifecyclePolicyText"])

    assert repository["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert repository["ImageTagMutability"] == "IMMUTABLE"
    assert [rule["selection"]["tagStatus"] for rule in lifecycle["rules"]] == ["untagged", "any"]


def test_no_iam_users_or_access_keys_exist() -> None:
    types = {resource["Type"] for _, _, resource in all_resources()}

    assert types.isdisjoint({"AWS::IAM::User", "AWS::IAM::AccessKey", "AWS::IAM::Group"})


def test_security_groups_chain_vpc_link_to_alb_to_service_to_data_stores() -> None:
    network = template("network.yaml")["Resources"]
    ingress = {
        (
            rule["Properties"]["SourceSecurityGroupId"]["Ref"],
            rule["Properties"]["GroupId"]["Ref"],
            rule["Properties"]["FromPort"],
        )
        for rule in network.values()
        if rule["Type"] == "AWS::EC2::SecurityGroupIngress"
    }
    inline_ingress = [name for name, r in network.items() if r.get("Properties", {}).get("SecurityGroupIngress")]

    assert ingress == {
        ("VpcLinkSecurityGroup", "LoadBalancerSecurityGroup", 443),
        ("LoadBalancerSecurityGroup", "ServiceSecurityGroup", 8000),
        ("ServiceSecurityGroup", "DatabaseSecurityGroup", 3306),
        ("RotationSecurityGroup", "DatabaseSecurityGroup", 3306),
        ("ServiceSecurityGroup", "CacheSecurityGroup", 6379),
    }
    assert inline_ingress == []


def test_only_the_service_and_rotation_reach_the_internet_and_only_over_https() -> None:
    network = template("network.yaml")["Resources"]
    open_egress = {
        (name, rule["IpProtocol"], rule["FromPort"], rule["ToPort"])
        for name, group in network.items()
        if group["Type"] == "AWS::EC2::SecurityGroup"
        for rule in group["Properties"].get("SecurityGroupEgress", [])
        if rule.get("CidrIp") != "255.255.255.255/32"
    }
    default_egress = [
        name
        for name, group in network.items()
        if group["Type"] == "AWS::EC2::SecurityGroup" and not group["Properties"].get("SecurityGroupEgress")
    ]

    assert open_egress == {("ServiceSecurityGroup", "tcp", 443, 443), ("RotationSecurityGroup", "tcp", 443, 443)}
    assert default_egress == [], "a group without egress rules gets AWS's allow-all default"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_nothing_gets_a_public_address(environment: str) -> None:
    subnets = resources(environment, "network.yaml", "AWS::EC2::Subnet")
    (balancer,) = resources(environment, "service.yaml", "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    (service,) = resources(environment, "service.yaml", "AWS::ECS::Service").values()
    databases = resources(environment, "data.yaml", "AWS::RDS::DBInstance")

    assert [s for s in subnets.values() if s["Properties"].get("MapPublicIpOnLaunch", False)] == []
    assert balancer["Properties"]["Scheme"] == "internal"
    assert service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
    assert {db["Properties"]["PubliclyAccessible"] for db in databases.values()} == {False}


def test_gitlab_jobs_assume_the_pipeline_role_only_from_this_project_and_branch() -> None:
    bootstrap = template(BOOTSTRAP)
    scope = scope_for(
        bootstrap,
        {**BOOTSTRAP_PARAMETERS, "Environment": "prod"},
        pseudo={"AWS::Partition": "aws", "AWS::AccountId": "123456789012"},
    )
    trust = json.loads(
        evaluate(bootstrap["Resources"]["PipelineRole"]["Properties"]["AssumeRolePolicyDocument"], scope)
    )

    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Federated": "arn:aws:iam::123456789012:oidc-provider/gitlab.example.com"}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {
            "gitlab.example.com:aud": "sts.amazonaws.com",
            "gitlab.example.com:sub": "project_path:airline-platform/skycart:ref_type:branch:ref:main",
        }
    }


def test_the_pipeline_deploys_only_through_cloudformation_on_its_own_environment() -> None:
    role = template(BOOTSTRAP)["Resources"]["PipelineRole"]
    by_sid = {s["Sid"]: s for s in statements(role)}

    assert by_sid["ChangeSetsOnThisEnvironment"]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}"
        ":stack/skycart-${Environment}*/*"
    }
    assert by_sid["HandChangeSetsToCloudFormation"]["Resource"] == {"Fn::GetAtt": ["DeploymentRole", "Arn"]}
    deploy_actions = {
        a for s in statements(role) for a in as_list(s["Action"]) if a.split(":")[0] in ("iam", "ec2", "rds")
    }
    assert deploy_actions == {"iam:PassRole"}
    deployment_trust = template(BOOTSTRAP)["Resources"]["DeploymentRole"]["Properties"]["AssumeRolePolicyDocument"]
    assert [s["Principal"] for s in deployment_trust["Statement"]] == [
        {"Service": {"Fn::Sub": "cloudformation.${AWS::URLSuffix}"}}
    ]
