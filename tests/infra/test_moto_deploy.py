"""Smoke deploy of dev and prod into one moto account (moto server on 127.0.0.1).

Both environments land in the same account, which also proves that no physical name collides.
What moto's CloudFormation cannot create is listed, with how it is handled, in tests/infra/moto_stacks.py;
the policy tests cover those resources from the parsed templates.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.aws.conftest import moto_server, reset_moto
from tests.infra.moto_stacks import (
    MOTO_MISSING_RESOURCES,
    MOTO_SKIPS,
    DeployedEnvironment,
    MotoAccount,
    deploy_environment,
    update_stack,
)
from tests.infra.templates import config, resources

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")


@pytest.fixture(scope="module")
def account() -> Iterator[MotoAccount]:
    with moto_server() as endpoint:
        reset_moto(endpoint)
        yield MotoAccount(endpoint)


@pytest.fixture(scope="module", params=["dev", "prod"])
def deployed(request: pytest.FixtureRequest, account: MotoAccount) -> DeployedEnvironment:
    return deploy_environment(account, request.param, manage_account_singletons=request.param == "dev")


def stack_resources(account: MotoAccount, deployed: DeployedEnvironment, file_name: str) -> dict[str, dict[str, Any]]:
    listed = account.client("cloudformation").list_stack_resources(StackName=deployed.stack_names[file_name])
    return {r["LogicalResourceId"]: r for r in listed["StackResourceSummaries"]}


def physical_ids(account: MotoAccount, deployed: DeployedEnvironment, file_name: str, resource_type: str) -> list[str]:
    listed = stack_resources(account, deployed, file_name).values()
    return [r["PhysicalResourceId"] for r in listed if r["ResourceType"] == resource_type]


def test_stacks_land_in_an_account_of_their_own(account: MotoAccount, deployed: DeployedEnvironment) -> None:
    assert account.client("sts").get_caller_identity()["Account"] == account.account_id
    assert f":{account.account_id}:" in deployed.outputs["service.yaml"]["LoadBalancerArn"]


def test_moto_creates_everything_but_the_documented_gaps(account: MotoAccount, deployed: DeployedEnvironment) -> None:
    for file_name in deployed.stack_names:
        expected = resources(deployed.environment, file_name, given=deployed.parameters[file_name])
        created = stack_resources(account, deployed, file_name)
        left_out = MOTO_MISSING_RESOURCES.get(file_name, set())

        skipped = {expected[name]["Type"] for name in expected.keys() - created.keys() - left_out}

        assert skipped <= MOTO_SKIPS, f"{file_name}: moto skipped {skipped - MOTO_SKIPS}; document and cover them"
        assert {r["ResourceStatus"] for r in created.values()} == {"CREATE_COMPLETE"}


def test_service_starts_with_the_environments_minimum(account: MotoAccount, deployed: DeployedEnvironment) -> None:
    out = deployed.outputs["service.yaml"]

    (service,) = account.client("ecs").describe_services(cluster=out["ClusterName"], services=[out["ServiceName"]])[
        "services"
    ]

    assert service["desiredCount"] == int(config(deployed.environment)["MinTasks"])


def test_log_groups_keep_the_environments_retention(account: MotoAccount, deployed: DeployedEnvironment) -> None:
    logs = account.client("logs")
    boot = deployed.outputs["service.yaml"]["BootLogGroupName"]
    names = [
        name
        for file_name in ("network.yaml", "service.yaml", "rotation.yaml", "api.yaml")
        for name in physical_ids(account, deployed, file_name, "AWS::Logs::LogGroup")
    ]

    retention = {
        group["logGroupName"]: group.get("retentionInDays")
        for name in names
        for group in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        if group["logGroupName"] == name
    }

    assert len(retention) == len(names) >= 6
    assert retention.pop(boot) == 7, "the container's stdout: what the app could not ship itself"
    assert set(retention.values()) == {int(config(deployed.environment)["LogRetentionDays"])}


def test_network_spans_the_environments_azs(account: MotoAccount, deployed: DeployedEnvironment) -> None:
    ec2 = account.client("ec2")
    row = config(deployed.environment)
    vpc = deployed.outputs["network.yaml"]["VpcId"]
    in_vpc = [{"Name": "vpc-id", "Values": [vpc]}]

    subnets = ec2.describe_subnets(Filters=in_vpc)["Subnets"]
    private = set(deployed.outputs["network.yaml"]["PrivateSubnetIds"].split(","))
    gateways = ec2.describe_nat_gateways(Filters=in_vpc)["NatGateways"]

    assert ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["CidrBlock"] == row["VpcCidr"]
    assert len(subnets) == 2 * int(row["AzCount"])
    assert len({s["AvailabilityZone"] for s in subnets if s["SubnetId"] in private}) == int(row["AzCount"])
    assert len(gateways) == (int(row["AzCount"]) if row["NatPerAz"] == "true" else 1)


def test_load_balancer_is_internal_https_and_checks_readyz(account: MotoAccount, deployed: DeployedEnvironment) -> None:
    elb = account.client("elbv2")
    arn = deployed.outputs["service.yaml"]["LoadBalancerArn"]

    (balancer,) = elb.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"]
    (listener,) = elb.describe_listeners(LoadBalancerArn=arn)["Listeners"]
    (group,) = elb.describe_target_groups(LoadBalancerArn=arn)["TargetGroups"]

    assert balancer["Scheme"] == "internal"
    assert (listener["Protocol"], listener["Port"]) == ("HTTPS", 443)
    assert listener["Certificates"][0]["CertificateArn"] == deployed.stand_ins["CertificateArn"]
    assert (group["HealthCheckPath"], group["Port"], group["TargetType"]) == ("/readyz", 8000, "ip")


def test_task_runs_read_only_as_non_root_with_injected_secrets(
    account: MotoAccount, deployed: DeployedEnvironment
) -> None:
    ecs = account.client("ecs")
    out = deployed.outputs["service.yaml"]
    (service,) = ecs.describe_services(cluster=out["ClusterName"], services=[out["ServiceName"]])["services"]

    task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    (container,) = task["containerDefinitions"]

    assert int(task["memory"]) == int(config(deployed.environment)["TaskMemory"])
    assert container["image"].endswith(f"/skycart/{deployed.environment}:0123abcd")
    assert container["readonlyRootFilesystem"] is True
    assert container["user"] == "10001:10001"
    assert container["mountPoints"][0]["containerPath"] == "/tmp"
    assert {s["name"]: s["valueFrom"] for s in container["secrets"]} == {
        "SKYCART_DB_SECRET": deployed.stand_ins["DatabaseSecretArn"],
        "SKYCART_REDIS_URL": deployed.stand_ins["RedisUrlSecretArn"],
    }
    assert {e["name"]: e["value"] for e in container["environment"]}["SKYCART_ASSETS_BUCKET"] == "assets-" + (
        deployed.environment
    )


def test_lambdas_are_wired_to_this_environment(account: MotoAccount, deployed: DeployedEnvironment) -> None:
    functions = account.client("lambda")
    service, api = deployed.outputs["service.yaml"], deployed.outputs["api.yaml"]

    rotation = functions.get_function(FunctionName=deployed.outputs["rotation.yaml"]["RotationFunctionArn"])
    deployer = functions.get_function(FunctionName=api["DeployerFunctionArn"])

    rotation_env = rotation["Configuration"]["Environment"]["Variables"]
    assert (rotation_env["ECS_CLUSTER"], rotation_env["ECS_SERVICE"]) == (
        service["ClusterName"],
        service["ServiceName"],
    )
    private = set(deployed.outputs["network.yaml"]["PrivateSubnetIds"].split(","))
    assert set(rotation["Configuration"]["VpcConfig"]["SubnetIds"]) == private
    deployer_env = deployer["Configuration"]["Environment"]["Variables"]
    assert deployer_env["REST_API_ID"] == api["RestApiId"]
    assert deployer_env["INTEGRATION_TARGET_ARN"] == service["LoadBalancerArn"]
    assert deployer_env["SPEC_BUCKET"] == api["SpecBucketName"]


def test_image_repository_is_per_environment_with_immutable_tags(
    account: MotoAccount, deployed: DeployedEnvironment
) -> None:
    name = deployed.outputs["bootstrap.yaml"]["ImageRepositoryName"]

    (repository,) = account.client("ecr").describe_repositories(repositoryNames=[name])["repositories"]

    assert name == f"skycart/{deployed.environment}"
    assert repository["imageTagMutability"] == "IMMUTABLE"


def test_dashboard_shows_this_environment_and_the_airline_metrics(
    account: MotoAccount, deployed: DeployedEnvironment
) -> None:
    name = deployed.outputs["monitoring.yaml"]["DashboardName"]

    body = account.client("cloudwatch").get_dashboard(DashboardName=name)["DashboardBody"]

    assert f"SkyCart {deployed.environment}" in body
    assert "{SkyCart,Airline}" in body and "{SkyCart,Airline,Route}" in body
    assert deployed.outputs["service.yaml"]["ClusterName"] in body


def test_stack_update_keeps_the_desired_count_auto_scaling_chose(account: MotoAccount) -> None:
    stage = deploy_environment(account, "stage", nested=("Network", "Service"), with_bootstrap=False)
    ecs = account.client("ecs")
    out = stage.outputs["service.yaml"]
    name = stage.stack_names["service.yaml"]

    def desired() -> int:
        (service,) = ecs.describe_services(cluster=out["ClusterName"], services=[out["ServiceName"]])["services"]
        return service["desiredCount"]

    assert desired() == int(config("stage")["MinTasks"])
    ecs.update_service(cluster=out["ClusterName"], service=out["ServiceName"], desiredCount=7)  # as auto scaling would

    # Changing a parameter the service refers to makes moto update the service, as CloudFormation would.
    update_stack(account, name, "service.yaml", stage.handed("Service", InitialDesiredCount=0))
    assert desired() == 7

    # The same update with DesiredCount in the template does reset it: the pitfall is real, the test can fail.
    update_stack(account, name, "service.yaml", stage.handed("Service", InitialDesiredCount=3))
    assert desired() == 3
