"""Per-environment policies: sizes from the table, spread over AZs, prod-only parts, alarms, wiring."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.infra.templates import (
    ENVIRONMENTS,
    ROOT,
    all_resources,
    config,
    nested_files,
    properties,
    resources,
    template,
)

# Fargate: memory (MiB) allowed for each CPU size (units).
FARGATE_MEMORY = {
    256: {512, 1024, 2048},
    512: set(range(1024, 4097, 1024)),
    1024: set(range(2048, 8193, 1024)),
    2048: set(range(4096, 16385, 1024)),
    4096: set(range(8192, 30721, 1024)),
}
# The values CloudWatch Logs accepts (up to five years).
LOG_RETENTION_DAYS = {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827}
BOOT_LOG_RETENTION_DAYS = 7


def az_index(subnet: dict[str, Any]) -> int:
    """Which AZ (by position in the region's list) a subnet sits in: AvailabilityZone is Select [i, GetAZs]."""
    zone = template("network.yaml")["Resources"][subnet]["Properties"]["AvailabilityZone"]
    return int(zone["Fn::Select"][0])


def private_subnets(environment: str) -> list[str]:
    kept = resources(environment, "network.yaml", "AWS::EC2::Subnet")
    return [name for name in kept if name.startswith("Private")]


def test_every_environment_has_a_complete_row() -> None:
    rows = template(ROOT)["Mappings"]["EnvironmentConfig"]

    assert sorted(rows) == sorted(ENVIRONMENTS)
    assert len({frozenset(row) for row in rows.values()}) == 1, "every environment sets the same keys"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_min_tasks_at_most_max_tasks(environment: str) -> None:
    row = config(environment)

    assert 1 <= int(row["MinTasks"]) <= int(row["MaxTasks"])


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_task_size_is_a_valid_fargate_pair(environment: str) -> None:
    task = properties(environment, "service.yaml", "TaskDefinition")

    assert int(task["Memory"]) in FARGATE_MEMORY[int(task["Cpu"])]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_private_subnets_cover_the_environments_azs(environment: str) -> None:
    subnets = private_subnets(environment)

    assert len({az_index(s) for s in subnets}) == len(subnets) == int(config(environment)["AzCount"]) >= 2


def test_service_load_balancer_and_data_stores_use_every_private_subnet() -> None:
    raw = template(ROOT)["Resources"]
    service = template("service.yaml")["Resources"]
    data = template("data.yaml")["Resources"]

    for logical_id in ("Service", "Data"):
        assert raw[logical_id]["Properties"]["Parameters"]["PrivateSubnetIds"] == {
            "Fn::GetAtt": ["Network", "Outputs.PrivateSubnetIds"]
        }
    assert service["Service"]["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"] == {
        "Ref": "PrivateSubnetIds"
    }
    assert service["LoadBalancer"]["Properties"]["Subnets"] == {"Ref": "PrivateSubnetIds"}
    assert data["DatabaseSubnetGroup"]["Properties"]["SubnetIds"] == {"Ref": "PrivateSubnetIds"}
    assert data["CacheSubnetGroup"]["Properties"]["SubnetIds"] == {"Ref": "PrivateSubnetIds"}
    output = template("network.yaml")["Outputs"]["PrivateSubnetIds"]["Value"]["Fn::If"]
    assert output == [
        "HasThirdAz",
        {"Fn::Join": [",", [{"Ref": f"PrivateSubnet{zone}"} for zone in "ABC"]]},
        {"Fn::Join": [",", [{"Ref": f"PrivateSubnet{zone}"} for zone in "AB"]]},
    ]


def test_prod_spreads_tasks_database_and_cache_over_at_least_two_azs() -> None:
    row = config("prod")
    service = properties("prod", "service.yaml", "Service")
    instances = resources("prod", "data.yaml", "AWS::RDS::DBInstance")
    cache = properties("prod", "data.yaml", "CacheReplicationGroup")

    assert int(row["AzCount"]) >= 2 and int(row["MinTasks"]) >= int(row["AzCount"])
    assert service["AvailabilityZoneRebalancing"] == "ENABLED"
    raw = template("data.yaml")["Resources"]
    zones = {int(raw[name]["Properties"]["AvailabilityZone"]["Fn::Select"][0]) for name in instances}
    assert len(instances) >= 2 and len(zones) == len(instances)
    assert cache["NumCacheClusters"] >= 2
    assert cache["MultiAZEnabled"] is True and cache["AutomaticFailoverEnabled"] is True


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_database_instances_sit_in_distinct_existing_azs(environment: str) -> None:
    instances = resources(environment, "data.yaml", "AWS::RDS::DBInstance")
    raw = template("data.yaml")["Resources"]
    positions = [int(raw[name]["Properties"]["AvailabilityZone"]["Fn::Select"][0]) for name in instances]

    assert len(instances) == 1 + int(config(environment)["DbReaderCount"])
    assert len(set(positions)) == len(positions)
    assert max(positions) < int(config(environment)["AzCount"])


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_deletion_protection_and_paging_only_in_prod(environment: str) -> None:
    prod = environment == "prod"
    cluster = properties(environment, "data.yaml", "DatabaseCluster")
    balancer = properties(environment, "service.yaml", "LoadBalancer")
    attributes = {a["Key"]: a["Value"] for a in balancer["LoadBalancerAttributes"]}
    paging = resources(environment, "monitoring.yaml", "AWS::SNS::Subscription")

    assert cluster["DeletionProtection"] is prod
    assert attributes["deletion_protection.enabled"] == ("true" if prod else "false")
    assert ("OnCallSubscription" in paging) is prod


def test_prod_cannot_be_deployed_without_an_on_call_endpoint() -> None:
    rule = template(ROOT)["Rules"]["ProdPagesOnCall"]

    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "Environment"}, "prod"]}
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "OnCallUrl"}, ""]}]}


def test_stateful_resources_survive_stack_deletion() -> None:
    raw = {(file, name): r for file, name, r in all_resources()}

    assert raw["data.yaml", "DatabaseCluster"]["DeletionPolicy"] == "Snapshot"
    assert raw["data.yaml", "DatabaseCluster"]["UpdateReplacePolicy"] == "Snapshot"
    assert raw["data.yaml", "AssetsBucket"]["DeletionPolicy"] == "Retain"
    assert raw["skycart.yaml", "EnvironmentKey"]["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_log_groups_keep_the_environments_retention(environment: str) -> None:
    expected = int(config(environment)["LogRetentionDays"])
    groups = {
        logical_id: group
        for file_name in nested_files().values()
        for logical_id, group in resources(environment, file_name, "AWS::Logs::LogGroup").items()
    }
    boot = groups.pop("BootLogGroup")

    assert len(groups) >= 6
    assert {int(group["Properties"]["RetentionInDays"]) for group in groups.values()} == {expected}
    assert expected in LOG_RETENTION_DAYS
    # Only what the app could not ship itself (infra/cloudformation/service.yaml): kept a week, in every environment.
    assert int(boot["Properties"]["RetentionInDays"]) == BOOT_LOG_RETENTION_DAYS < expected


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_backups_follow_the_environment(environment: str) -> None:
    cluster = properties(environment, "data.yaml", "DatabaseCluster")

    assert int(cluster["BackupRetentionPeriod"]) == int(config(environment)["DbBackupRetentionDays"])


ALARM_THRESHOLDS = {
    "Http5xxRate": "AlarmHttp5xxPercent",
    "TargetP99Latency": "AlarmP99LatencySeconds",
    "ServiceCpu": "AlarmServiceCpuPercent",
    "ServiceMemory": "AlarmServiceMemoryPercent",
    "DatabaseConnections": "AlarmDbConnections",
    "DatabaseCpu": "AlarmDbCpuPercent",
    "CacheMemory": "AlarmCacheMemoryPercent",
    "CacheEvictions": "AlarmCacheEvictions",
}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_alarms_use_the_environments_thresholds_and_notify_the_topic(environment: str) -> None:
    alarms = resources(environment, "monitoring.yaml", "AWS::CloudWatch::Alarm")
    row = config(environment)

    for alarm, key in ALARM_THRESHOLDS.items():
        assert float(alarms[alarm]["Properties"]["Threshold"]) == float(row[key]), alarm
    assert {"UnhealthyHosts", "DeployerFailed"} <= alarms.keys()
    raw = template("monitoring.yaml")["Resources"]
    assert [a for a in alarms if raw[a]["Properties"]["AlarmActions"] != [{"Ref": "AlarmTopic"}]] == []


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_cache_alarms_watch_every_node(environment: str) -> None:
    nodes = 1 + int(config(environment)["CacheReplicas"])
    cache = properties(environment, "data.yaml", "CacheReplicationGroup")
    memory = properties(environment, "monitoring.yaml", "CacheMemory")

    assert cache["NumCacheClusters"] == nodes
    watched = [m["MetricStat"]["Metric"]["Dimensions"][0]["Value"] for m in memory["Metrics"] if "MetricStat" in m]
    assert len(watched) == nodes
    (expression,) = [m["Expression"] for m in memory["Metrics"] if "Expression" in m]
    assert expression == "MAX([" + ", ".join(f"n{i}" for i in range(1, nodes + 1)) + "])"


def test_dashboard_shows_the_per_airline_emf_metrics() -> None:
    body = template("monitoring.yaml")["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]

    assert "{SkyCart,Airline}" in body and "{SkyCart,Airline,Route}" in body
    assert {"Requests", "Errors", "Latency"} <= set(re.findall(r'MetricName=\\"(\w+)\\"', body))


def test_every_nested_stack_gets_exactly_the_parameters_its_template_declares() -> None:
    root = template(ROOT)["Resources"]
    for logical_id, file_name in nested_files().items():
        declared = template(file_name)["Parameters"]
        passed = set(root[logical_id]["Properties"]["Parameters"])
        required = {name for name, spec in declared.items() if "Default" not in spec}

        assert passed <= set(declared), f"{logical_id} passes unknown {passed - set(declared)}"
        assert required <= passed, f"{logical_id} misses {required - passed}"


PHYSICAL_NAMES = {
    "BucketName",
    "ClusterName",
    "DBClusterIdentifier",
    "DBInstanceIdentifier",
    "DashboardName",
    "FunctionName",
    "LogGroupName",
    "Name",
    "PolicyName",
    "QueueName",
    "ReplicationGroupId",
    "RepositoryName",
    "RoleName",
    "ServiceName",
    "TopicName",
    "UsagePlanName",
    "AlarmName",
}


def test_no_physical_name_is_hard_coded_so_environments_can_share_an_account() -> None:
    fixed = []
    for file_name, logical_id, resource in all_resources():
        for key, value in resource.get("Properties", {}).items():
            if key not in PHYSICAL_NAMES:
                continue
            if isinstance(value, dict) and ("Ref" in value or "Fn::GetAtt" in value):
                continue  # names another resource or a parameter
            text = str(value)
            if "AWS::StackName" not in text and "${Environment}" not in text:
                fixed.append(f"{file_name}:{logical_id}.{key}={text}")

    assert fixed == []
