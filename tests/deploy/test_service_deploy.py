"""`service deploy`: a new task-definition revision with the new image, then wait until stable, in moto.

The service comes from the real service.yaml, deployed to moto as tests/infra does. Moto reads
MOTO_ECS_SERVICE_RUNNING when it creates a service: equal to the desired count, the deployment is
COMPLETED at once; 0 keeps it IN_PROGRESS. Moto has no circuit breaker, and after update_service its
deployment list still names the old task definition (only the service's taskDefinition moves). A
rollback is therefore produced by doing what the circuit breaker does to the service (putting the
previous revision back while the deploy waits); the FAILED rollout shapes are checked on moto's own
describe_services output with the deployments ECS reports during a rollback.
"""

from __future__ import annotations

import copy
import json
import threading
from typing import Any

import pytest
from typer.testing import CliRunner

from skycart_deploy import aws, ecs
from skycart_deploy.cli import app
from tests.infra.moto_stacks import REGION, MotoAccount, deploy_environment

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")
WIDE = {"COLUMNS": "250", "NO_COLOR": "1"}
NEW_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/skycart/dev@sha256:" + "b" * 64


class Service:
    """The dev service in moto, and the root stack whose outputs name it."""

    def __init__(self, endpoint: str) -> None:
        deployed = deploy_environment(MotoAccount(endpoint, "123456789012"), "dev", nested=("Network", "Service"),
                                      with_bootstrap=False)  # fmt: skip
        self.cluster = deployed.outputs["service.yaml"]["ClusterName"]
        self.name = deployed.outputs["service.yaml"]["ServiceName"]
        self.endpoint = endpoint
        self.ecs = aws.client("ecs", endpoint, REGION)
        root = {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {"ClusterName": {"Value": self.cluster}, "ServiceName": {"Value": self.name}},
        }
        aws.client("cloudformation", endpoint, REGION).create_stack(
            StackName="skycart-dev", TemplateBody=json.dumps(root)
        )
        self.original = self.described()["taskDefinition"]

    def described(self) -> dict[str, Any]:
        (found,) = self.ecs.describe_services(cluster=self.cluster, services=[self.name])["services"]
        return found

    def task_definition(self, arn: str | None = None) -> dict[str, Any]:
        return self.ecs.describe_task_definition(taskDefinition=arn or self.described()["taskDefinition"])[
            "taskDefinition"
        ]

    def revisions(self) -> list[str]:
        return self.ecs.list_task_definitions()["taskDefinitionArns"]

    def deploy(self, *extra: str) -> Any:
        arguments = ["service", "deploy", "--env", "dev", "--endpoint-url", self.endpoint, "--region", REGION]
        return CliRunner(env=WIDE).invoke(app, [*arguments, "--poll-seconds", "0.1", *extra])


@pytest.fixture
def running(fresh_moto: str, monkeypatch: pytest.MonkeyPatch) -> Service:
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "1")  # dev's MinTasks: the rollout completes at once
    return Service(fresh_moto)


@pytest.fixture
def starting(fresh_moto: str, monkeypatch: pytest.MonkeyPatch) -> Service:
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "0")  # no task ever runs: the rollout stays IN_PROGRESS
    return Service(fresh_moto)


def test_deploy_runs_a_new_revision_that_differs_only_in_the_image(running: Service) -> None:
    before = running.task_definition()

    result = running.deploy("--image", NEW_IMAGE)

    assert result.exit_code == 0, result.output
    assert f"{running.name} is stable" in result.output
    after = running.task_definition()
    assert (after["family"], after["revision"]) == (before["family"], before["revision"] + 1)
    assert ecs.container_image(after, container="app") == NEW_IMAGE
    same = ecs.registrable_fields(running.ecs) - {"containerDefinitions"}
    assert {k: v for k, v in after.items() if k in same} == {k: v for k, v in before.items() if k in same}
    (old_app,), (new_app,) = before["containerDefinitions"], after["containerDefinitions"]
    assert new_app == {**old_app, "image": NEW_IMAGE}


def test_deploying_the_image_the_service_already_runs_changes_nothing(running: Service) -> None:
    assert running.deploy("--image", NEW_IMAGE).exit_code == 0
    revisions, current = running.revisions(), running.described()["taskDefinition"]

    again = running.deploy("--image", NEW_IMAGE)

    assert again.exit_code == 0, again.output
    assert "already runs" in again.output
    assert running.revisions() == revisions
    assert running.described()["taskDefinition"] == current


def test_dry_run_says_what_would_change_and_changes_nothing(running: Service) -> None:
    revisions = running.revisions()

    result = running.deploy("--image", NEW_IMAGE, "--dry-run")

    assert result.exit_code == 0, result.output
    assert f"would register a revision of {running.original}" in result.output
    assert running.revisions() == revisions
    assert running.described()["taskDefinition"] == running.original


def test_cluster_and_service_options_override_the_stack_outputs(running: Service) -> None:
    result = running.deploy("--image", NEW_IMAGE, "--cluster", running.cluster, "--service", "not-there")

    assert result.exit_code == 1
    assert f"no active ECS service 'not-there' in cluster '{running.cluster}'" in result.output


def test_an_environment_without_a_root_stack_fails_with_a_message(moto_endpoint: str) -> None:
    arguments = ["service", "deploy", "--env", "qa", "--image", NEW_IMAGE, "--endpoint-url", moto_endpoint]

    result = CliRunner(env=WIDE).invoke(app, [*arguments, "--region", REGION])

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "cannot find the service" in result.output and "skycart-qa does not exist" in result.output


def test_a_container_the_task_definition_lacks_is_named_in_the_error(running: Service) -> None:
    result = running.deploy("--image", NEW_IMAGE, "--container", "web")

    assert result.exit_code == 1
    assert "no container 'web'" in result.output and "(has: app)" in result.output
    assert running.described()["taskDefinition"] == running.original


def test_a_deployment_that_never_gets_stable_times_out_non_zero(starting: Service) -> None:
    result = starting.deploy("--image", NEW_IMAGE, "--timeout", "0.5")

    assert result.exit_code == 1
    assert "deploy not stable" in result.output and "0/1 running" in result.output


def test_a_rollback_to_the_previous_revision_while_waiting_fails_the_deploy(starting: Service) -> None:
    watcher = aws.client("ecs", starting.endpoint, REGION)

    def roll_back_like_the_circuit_breaker() -> None:
        for _ in range(200):
            (seen,) = watcher.describe_services(cluster=starting.cluster, services=[starting.name])["services"]
            if seen["taskDefinition"] != starting.original:
                watcher.update_service(
                    cluster=starting.cluster, service=starting.name, taskDefinition=starting.original
                )
                return
            threading.Event().wait(0.05)

    breaker = threading.Thread(target=roll_back_like_the_circuit_breaker)
    breaker.start()
    try:
        with pytest.raises(ecs.DeploymentFailed, match="rolled back") as failed:
            ecs.deploy_service(
                starting.ecs, cluster=starting.cluster, service=starting.name, image=NEW_IMAGE, poll_seconds=0.05,
                timeout=10,
            )  # fmt: skip
    finally:
        breaker.join()

    assert failed.value.deployment.rollout is not None
    assert failed.value.deployment.rollout.state == "failed"
    assert starting.described()["taskDefinition"] == starting.original


def rollout_shapes(service: Service) -> tuple[dict[str, Any], str, str]:
    """moto's describe_services output after a deploy, with our new revision and the one before it."""
    result = ecs.deploy_service(service.ecs, cluster=service.cluster, service=service.name, image=NEW_IMAGE,
                                poll_seconds=0.05)  # fmt: skip
    assert result.task_definition is not None
    return service.described(), result.task_definition, service.original


def test_a_failed_rollout_of_our_revision_is_a_rollback(running: Service) -> None:
    described, ours, previous = rollout_shapes(running)
    (template,) = described["deployments"]
    during = copy.deepcopy(described)
    during["taskDefinition"] = previous
    during["deployments"] = [
        {**template, "id": "ecs-svc/2", "status": "PRIMARY", "taskDefinition": previous, "rolloutState": "IN_PROGRESS"},
        {**template, "id": "ecs-svc/1", "status": "ACTIVE", "taskDefinition": ours, "rolloutState": "FAILED",
         "rolloutStateReason": "ECS deployment circuit breaker: tasks failed to start."},
    ]  # fmt: skip

    rollout = ecs.assess_rollout(during, task_definition_arn=ours)

    assert rollout.state == "failed"
    assert "circuit breaker: tasks failed to start" in rollout.detail


def test_the_primary_deployment_leaving_our_revision_is_a_rollback(running: Service) -> None:
    described, ours, previous = rollout_shapes(running)
    (template,) = described["deployments"]
    ours_first = copy.deepcopy(described)
    ours_first["deployments"] = [{**template, "taskDefinition": ours, "rolloutState": "IN_PROGRESS"}]
    then_previous = copy.deepcopy(described)
    then_previous["deployments"] = [{**template, "taskDefinition": previous, "rolloutState": "IN_PROGRESS"}]

    first = ecs.assess_rollout(ours_first, task_definition_arn=ours)
    second = ecs.assess_rollout(then_previous, task_definition_arn=ours, was_primary=first.ours_primary)

    assert (first.state, first.ours_primary) == ("in-progress", True)
    assert second.state == "failed" and previous in second.detail


def test_a_rollout_is_stable_only_with_one_completed_primary_at_full_count(running: Service) -> None:
    described, ours, previous = rollout_shapes(running)
    (template,) = described["deployments"]
    primary = {**template, "taskDefinition": ours, "rolloutState": "COMPLETED", "runningCount": 1, "desiredCount": 1}
    draining = {**template, "id": "ecs-svc/0", "status": "ACTIVE", "taskDefinition": previous}

    def state(*deployments: dict[str, Any]) -> str:
        shape = {**copy.deepcopy(described), "deployments": list(deployments)}
        return ecs.assess_rollout(shape, task_definition_arn=ours).state

    assert state(primary) == "stable"
    assert state(primary, draining) == "in-progress"
    assert state({**primary, "runningCount": 0}) == "in-progress"
    assert state({**primary, "rolloutState": "IN_PROGRESS"}) == "in-progress"
