"""The service, its scaling, the API front door and the Lambdas, as the templates define them."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from skycart_deploy.cfn import Unresolved, evaluate, scope_for
from tests.infra.templates import ENVIRONMENTS, config, parameters, properties, resources, template

PLANS_MIGRATION = (
    Path(__file__).resolve().parents[2]
    / "src"
    / "skycart"
    / "platform"
    / "migrations"
    / "versions"
    / "0002_metering_and_plans.py"
)
# sha256 of the REST API's properties (bootstrap body included). Any change updates the resource, which
# can PUT the bootstrap body over the definition the deployer Lambda put there (infra/README.md).
REST_API_SHA256 = "0a1e511552ede68c9fa4b8304edcf31f9fc2e273a94fc80946a1000f5395143d"


def service_properties(environment: str, **overrides: Any) -> dict[str, Any]:
    """The ECS service's properties as CloudFormation would send them with these parameters."""
    loaded = template("service.yaml")
    scope = scope_for(loaded, {**parameters(environment, "service.yaml"), **overrides})
    return evaluate(loaded["Resources"]["Service"]["Properties"], scope)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_deployments_roll_with_circuit_breaker_and_rollback(environment: str) -> None:
    deployment = properties(environment, "service.yaml", "Service")["DeploymentConfiguration"]

    assert deployment == {
        "MinimumHealthyPercent": 100,
        "MaximumPercent": 200,
        "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
    }


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_stack_updates_leave_desired_count_to_auto_scaling(environment: str) -> None:
    assert "DesiredCount" not in service_properties(environment)
    assert "DesiredCount" not in service_properties(environment, InitialDesiredCount=0)
    assert service_properties(environment, InitialDesiredCount=4)["DesiredCount"] == 4
    assert template("skycart.yaml")["Parameters"]["InitialDesiredCount"]["Default"] == 0


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_auto_scaling_tracks_cpu_and_requests_within_the_environments_range(environment: str) -> None:
    row = config(environment)
    target = properties(environment, "service.yaml", "ScalableTarget")
    policies = {
        p["Properties"]["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"][
            "PredefinedMetricType"
        ]: p["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        for p in resources(environment, "service.yaml", "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    }

    assert (int(target["MinCapacity"]), int(target["MaxCapacity"])) == (int(row["MinTasks"]), int(row["MaxTasks"]))
    assert target["ScalableDimension"] == "ecs:service:DesiredCount"
    assert policies["ECSServiceAverageCPUUtilization"]["TargetValue"] == 60
    assert int(policies["ALBRequestCountPerTarget"]["TargetValue"]) == int(row["RequestsPerTarget"])
    for policy in policies.values():
        assert policy["ScaleOutCooldown"] <= 60 < 300 <= policy["ScaleInCooldown"]


def test_peak_schedule_raises_the_minimum_only_when_given() -> None:
    loaded = template("service.yaml")
    base = parameters("prod", "service.yaml")
    peak = {
        **base,
        "PeakStartSchedule": "cron(0 5 * * ? *)",
        "PeakEndSchedule": "cron(0 9 * * ? *)",
        "PeakMinTasks": 12,
    }

    without = evaluate(loaded["Resources"]["ScalableTarget"]["Properties"], scope_for(loaded, base))
    with_peak = evaluate(loaded["Resources"]["ScalableTarget"]["Properties"], scope_for(loaded, peak))

    assert "ScheduledActions" not in without
    raise_, restore = with_peak["ScheduledActions"]
    assert (raise_["Schedule"], raise_["ScalableTargetAction"]["MinCapacity"]) == ("cron(0 5 * * ? *)", 12)
    assert (restore["Schedule"], int(restore["ScalableTargetAction"]["MinCapacity"])) == ("cron(0 9 * * ? *)", 3)


def test_load_balancer_checks_readyz_on_the_app_port_over_https() -> None:
    group = properties("dev", "service.yaml", "TargetGroup")
    listener = template("service.yaml")["Resources"]["HttpsListener"]["Properties"]
    (container,) = properties("dev", "service.yaml", "TaskDefinition")["ContainerDefinitions"]

    assert (group["HealthCheckPath"], group["Port"], group["TargetType"]) == ("/readyz", 8000, "ip")
    assert container["PortMappings"] == [{"ContainerPort": 8000, "Protocol": "tcp"}]
    assert (listener["Protocol"], listener["Port"]) == ("HTTPS", 443)
    assert listener["Certificates"] == [{"CertificateArn": {"Ref": "CertificateArn"}}]
    assert listener["SslPolicy"].startswith("ELBSecurityPolicy-TLS13")


def test_container_is_immutable_and_runs_as_non_root() -> None:
    task = properties("prod", "service.yaml", "TaskDefinition")
    (container,) = task["ContainerDefinitions"]

    assert container["ReadonlyRootFilesystem"] is True
    assert container["Privileged"] is False
    assert container["User"].split(":")[0] not in ("", "0", "root")
    assert container["LinuxParameters"]["Capabilities"]["Drop"] == ["ALL"]
    assert task["Volumes"] == [{"Name": "tmp"}]
    assert container["MountPoints"] == [{"SourceVolume": "tmp", "ContainerPath": "/tmp", "ReadOnly": False}]
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    assert {e["Name"] for e in container["Environment"]} >= {"SKYCART_ASSETS_BUCKET", "SKYCART_LOG_GROUP"}


def seeded_plans() -> dict[str, dict[str, Any]]:
    """The plans the metering migration seeds, read from its source (code -> fields)."""
    tree = ast.parse(PLANS_MIGRATION.read_text(encoding="utf-8"))
    plans = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "code" for k in node.keys):
            fields = {k.value: v for k, v in zip(node.keys, node.values, strict=True) if isinstance(k, ast.Constant)}
            plans[ast.literal_eval(fields["code"])] = {
                key: ast.literal_eval(fields[key])
                for key in ("monthly_request_quota", "overage", "rate_limit_milli_rps", "burst")
            }
    return plans


def test_usage_plans_mirror_the_seeded_service_packages() -> None:
    plans = seeded_plans()
    gateway = {
        name.removesuffix("Plan").lower(): p["Properties"]
        for name, p in resources("prod", "api.yaml", "AWS::ApiGateway::UsagePlan").items()
    }

    assert set(gateway) == set(plans) == {"basic", "standard", "premium"}
    for code, plan in plans.items():
        throttle = gateway[code]["Throttle"]
        assert throttle == {"RateLimit": plan["rate_limit_milli_rps"] / 1000, "BurstLimit": plan["burst"]}, code
        hard_stop = plan["monthly_request_quota"] is not None and not plan["overage"]
        expected_quota = {"Limit": plan["monthly_request_quota"], "Period": "MONTH"} if hard_stop else None
        assert gateway[code].get("Quota") == expected_quota, code
        assert gateway[code]["ApiStages"] == [{"ApiId": Unresolved("Ref RestApi"), "Stage": Unresolved("Ref Stage")}]


def test_cloudformation_never_moves_the_stage_off_the_deployers_deployment() -> None:
    api = template("api.yaml")["Resources"]

    assert api["Stage"]["Properties"]["DeploymentId"] == {"Ref": "BootstrapDeployment"}
    assert [name for name, r in api.items() if r["Type"] == "AWS::ApiGateway::Deployment"] == ["BootstrapDeployment"]
    assert "Mode" not in api["RestApi"]["Properties"] and "BodyS3Location" not in api["RestApi"]["Properties"]


def test_the_rest_api_resource_is_frozen() -> None:
    rest_api = template("api.yaml")["Resources"]["RestApi"]["Properties"]
    digest = hashlib.sha256(json.dumps(rest_api, sort_keys=True).encode()).hexdigest()

    assert digest == REST_API_SHA256, "an update of this resource can put the bootstrap body back over the live API"


def test_the_deployer_runs_on_spec_uploads_one_at_a_time_and_touches_only_its_api() -> None:
    api = template("api.yaml")["Resources"]
    deployer = api["DeployerFunction"]["Properties"]
    rule = api["SpecUploaded"]["Properties"]
    grants = {s["Sid"]: s for s in api["DeployerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]}

    assert rule["EventPattern"]["detail"] == {
        "bucket": {"name": [{"Ref": "SpecBucket"}]},
        "object": {"key": [{"prefix": "openapi/"}]},
    }
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["DeployerFunction", "Arn"]}
    assert api["SpecBucket"]["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    assert deployer["ReservedConcurrentExecutions"] == 1
    assert grants["DefineAndDeployThisApi"]["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${RestApi}"},
        {"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${RestApi}/*"},
    ]
    assert {"REST_API_ID", "STAGE_NAME", "VPC_LINK_ID", "INTEGRATION_TARGET_ARN", "SPEC_BUCKET"} <= set(
        deployer["Environment"]["Variables"]
    )


def test_rotation_runs_on_schedule_and_may_redeploy_only_its_service() -> None:
    rotation = template("rotation.yaml")["Resources"]
    schedule = rotation["RotationSchedule"]["Properties"]
    grants = {s["Sid"]: s for s in rotation["RotationRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]}
    variables = rotation["RotationFunction"]["Properties"]["Environment"]["Variables"]

    assert schedule["SecretId"] == {"Ref": "DatabaseSecretArn"}
    assert schedule["RotationLambdaARN"] == {"Fn::GetAtt": ["RotationFunction", "Arn"]}
    assert grants["RedeployService"] == {
        "Sid": "RedeployService",
        "Effect": "Allow",
        "Action": "ecs:UpdateService",
        "Resource": {
            "Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}"
            ":service/${ClusterName}/${ServiceName}"
        },
    }
    assert (variables["ECS_CLUSTER"], variables["ECS_SERVICE"]) == ({"Ref": "ClusterName"}, {"Ref": "ServiceName"})
    root = template("skycart.yaml")["Resources"]["Rotation"]["Properties"]["Parameters"]
    assert root["ServiceName"] == {"Fn::GetAtt": ["Service", "Outputs.ServiceName"]}


def test_each_log_line_has_one_path_to_cloudwatch() -> None:
    """The app ships its lines (and EMF records) to AppLogGroup; the driver takes stdout to the boot group."""
    (container,) = template("service.yaml")["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    environment = {item["Name"]: item["Value"] for item in container["Environment"]}

    assert environment["SKYCART_LOG_GROUP"] == {"Ref": "AppLogGroup"}
    assert environment["SKYCART_EMF_METRICS"] == "true"
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    assert container["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": "BootLogGroup"}
