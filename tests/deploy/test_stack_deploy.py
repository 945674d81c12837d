"""`stack deploy`: change sets against moto server, and the rules for parameters and stack states.

Moto executes a change set synchronously and never rolls back: a resource it rejects fails the
ExecuteChangeSet call itself, with the stack left as it was, instead of a ROLLBACK_COMPLETE stack with
CREATE_FAILED events. The CLI test covers the first; the event rules (what counts as settled, which
events explain a failure) are tested on event records in the shape describe_stack_events returns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from skycart_deploy import aws, changesets, ecs
from skycart_deploy.cfn import load_template
from skycart_deploy.cli import app
from tests.aws.conftest import reset_moto
from tests.infra.moto_stacks import REGION, MotoAccount, create_stack, deploy_environment, moto_variant
from tests.infra.templates import TEMPLATE_DIR

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning", "ignore:Exception(.*) with code")
WIDE = {"COLUMNS": "250", "NO_COLOR": "1"}
QUEUE = """
Parameters:
  Environment: {Type: String}
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "orders-${Environment}"
"""
QUEUE_AND_TOPIC = """
Parameters:
  Environment: {Type: String}
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "orders-${Environment}"
      VisibilityTimeout: 60
  Topic:
    Type: AWS::SNS::Topic
"""
MISSING_VPC = """
Parameters:
  Environment: {Type: String}
Resources:
  Subnet:
    Type: AWS::EC2::Subnet
    Properties:
      VpcId: vpc-12345678
      CidrBlock: 10.0.0.0/24
"""


@pytest.fixture
def cloudformation(fresh_moto: str) -> Any:
    return boto3.client("cloudformation", endpoint_url=fresh_moto)


def deploy(endpoint: str, tmp_path: Path, body: str, *extra: str) -> Any:
    template = tmp_path / f"template-{abs(hash(body))}.yaml"
    template.write_text(body)
    arguments = ["stack", "deploy", "--env", "dev", "--template", str(template), "--endpoint-url", endpoint]
    return CliRunner(env=WIDE).invoke(app, [*arguments, "--poll-seconds", "0.1", *extra])


def rows(output: str) -> list[list[str]]:
    """The cells of every table row in the output."""
    found = []
    for line in output.splitlines():
        cells = [cell.strip() for cell in re.split("[│┃]", line)[1:-1]]
        if len(cells) > 1:
            found.append(cells)
    return found


def stack(cloudformation: Any, name: str = "skycart-dev") -> dict[str, Any]:
    (found,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
    return found


def test_deploy_creates_the_root_stack_from_a_change_set(
    cloudformation: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    result = deploy(moto_endpoint, tmp_path, QUEUE)

    assert result.exit_code == 0, result.output
    assert ["Add", "Queue", "AWS::SQS::Queue", ""] in rows(result.output)
    created = stack(cloudformation)
    assert created["StackStatus"] == "CREATE_COMPLETE"
    assert created["Parameters"] == [{"ParameterKey": "Environment", "ParameterValue": "dev"}]
    assert boto3.client("sqs", endpoint_url=moto_endpoint).get_queue_url(QueueName="orders-dev")["QueueUrl"]


def test_identical_redeploy_says_no_changes_and_leaves_the_stack_as_it_was(
    cloudformation: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    assert deploy(moto_endpoint, tmp_path, QUEUE).exit_code == 0
    events = cloudformation.describe_stack_events(StackName="skycart-dev")["StackEvents"]

    again = deploy(moto_endpoint, tmp_path, QUEUE)

    assert again.exit_code == 0, again.output
    assert "skycart-dev: no changes" in again.output
    assert cloudformation.describe_stack_events(StackName="skycart-dev")["StackEvents"] == events
    assert len(cloudformation.list_change_sets(StackName="skycart-dev")["Summaries"]) == 1


def test_a_change_set_without_changes_is_deleted(cloudformation: Any, moto_endpoint: str, tmp_path: Path) -> None:
    # No parameters: moto then answers with a FAILED change set ("didn't contain changes") instead of an error.
    body = "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n"
    assert deploy(moto_endpoint, tmp_path, body).exit_code == 0

    again = deploy(moto_endpoint, tmp_path, body)

    assert again.exit_code == 0, again.output
    assert "no changes" in again.output
    (executed,) = cloudformation.list_change_sets(StackName="skycart-dev")["Summaries"]
    assert executed["ExecutionStatus"] == "EXECUTE_COMPLETE"


def test_update_prints_the_change_table_and_applies_it(cloudformation: Any, moto_endpoint: str, tmp_path: Path) -> None:
    assert deploy(moto_endpoint, tmp_path, QUEUE).exit_code == 0

    result = deploy(moto_endpoint, tmp_path, QUEUE_AND_TOPIC)

    assert result.exit_code == 0, result.output
    table = rows(result.output)
    assert table[0] == ["action", "logical id", "type", "replacement"]
    assert ["Add", "Topic", "AWS::SNS::Topic", ""] in table
    assert ["Modify", "Queue", "AWS::SQS::Queue", ""] in table
    assert stack(cloudformation)["StackStatus"] == "UPDATE_COMPLETE"
    assert len(boto3.client("sns", endpoint_url=moto_endpoint).list_topics()["Topics"]) == 1


def test_a_resource_that_fails_exits_non_zero_with_the_reason(
    cloudformation: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    result = deploy(moto_endpoint, tmp_path, MISSING_VPC)

    assert result.exit_code == 1
    assert "skycart-dev: deploy failed: VpcID vpc-12345678 does not exist" in result.output
    assert stack(cloudformation)["StackStatus"] != "CREATE_COMPLETE"


def test_dry_run_of_a_new_stack_leaves_no_stack_behind(cloudformation: Any, moto_endpoint: str, tmp_path: Path) -> None:
    result = deploy(moto_endpoint, tmp_path, QUEUE, "--dry-run")

    assert result.exit_code == 0, result.output
    assert ["Add", "Queue", "AWS::SQS::Queue", ""] in rows(result.output)
    assert "dry run" in result.output
    assert changesets.stack_status(cloudformation, stack_name="skycart-dev") is None
    assert boto3.client("sqs", endpoint_url=moto_endpoint).list_queues().get("QueueUrls", []) == []


def test_dry_run_of_an_update_shows_it_and_changes_nothing(
    cloudformation: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    assert deploy(moto_endpoint, tmp_path, QUEUE).exit_code == 0
    before = cloudformation.get_template(StackName="skycart-dev")["TemplateBody"]

    result = deploy(moto_endpoint, tmp_path, QUEUE_AND_TOPIC, "--dry-run")

    assert result.exit_code == 0, result.output
    assert ["Add", "Topic", "AWS::SNS::Topic", ""] in rows(result.output)
    assert cloudformation.get_template(StackName="skycart-dev")["TemplateBody"] == before
    assert stack(cloudformation)["StackStatus"] == "CREATE_COMPLETE"
    assert len(cloudformation.list_change_sets(StackName="skycart-dev")["Summaries"]) == 1
    assert boto3.client("sns", endpoint_url=moto_endpoint).list_topics()["Topics"] == []


def test_parameters_not_given_keep_their_current_value(cloudformation: Any, moto_endpoint: str, tmp_path: Path) -> None:
    sized = QUEUE.replace("Parameters:\n", "Parameters:\n  Retention: {Type: String}\n")
    assert deploy(moto_endpoint, tmp_path, sized, "--parameter", "Retention=345600").exit_code == 0

    result = deploy(moto_endpoint, tmp_path, sized + "  Topic:\n    Type: AWS::SNS::Topic\n")

    assert result.exit_code == 0, result.output
    values = {p["ParameterKey"]: p["ParameterValue"] for p in stack(cloudformation)["Parameters"]}
    assert values == {"Environment": "dev", "Retention": "345600"}


@pytest.mark.parametrize("given", ["Environment=prod", "InitialDesiredCount=3", "Nope=1", "no-equals"])
def test_parameters_the_tool_owns_or_the_template_lacks_are_refused(
    cloudformation: Any, moto_endpoint: str, tmp_path: Path, given: str
) -> None:
    result = deploy(moto_endpoint, tmp_path, QUEUE, "--parameter", given)

    assert result.exit_code == 2
    assert "--parameter" in result.output
    assert changesets.stack_status(cloudformation, stack_name="skycart-dev") is None


def test_an_unknown_environment_is_refused(moto_endpoint: str, tmp_path: Path) -> None:
    result = CliRunner(env=WIDE).invoke(app, ["stack", "deploy", "--env", "test", "--endpoint-url", moto_endpoint])

    assert result.exit_code == 2
    assert "unknown environment 'test'" in result.output


def test_initial_desired_count_is_min_tasks_when_creating_and_zero_on_update() -> None:
    template = {
        "Parameters": {"Environment": {"Type": "String"}, "InitialDesiredCount": {"Type": "Number"}},
        "Mappings": {"EnvironmentConfig": {"prod": {"MinTasks": "3"}}},
    }

    creating = changesets.stack_parameters(template=template, environment="prod", given={}, creating=True)
    updating = changesets.stack_parameters(
        template=template, environment="prod", given={}, creating=False, existing=frozenset({"InitialDesiredCount"})
    )

    assert {"ParameterKey": "InitialDesiredCount", "ParameterValue": "3"} in creating
    assert {"ParameterKey": "InitialDesiredCount", "ParameterValue": "0"} in updating
    assert not any(p.get("UsePreviousValue") for p in updating)


@pytest.fixture
def leaves_no_state(fresh_moto: str) -> Iterator[str]:
    """fresh_moto, reset again afterwards: moto's S3 names are global, and later suites create the same buckets."""
    yield fresh_moto
    reset_moto(fresh_moto)


def test_service_stack_starts_with_min_tasks_then_updates_with_zero(leaves_no_state: str) -> None:
    fresh_moto = leaves_no_state
    network = deploy_environment(MotoAccount(fresh_moto, "123456789012"), "stage", nested=("Network",),
                                 with_bootstrap=False)  # fmt: skip
    handed = network.handed("Service")
    given = {key: str(value) for key, value in handed.items() if key not in changesets.OWNED_PARAMETERS}
    cloudformation = aws.client("cloudformation", fresh_moto, REGION)
    ecs = aws.client("ecs", fresh_moto, REGION)

    def release(image_tag: str) -> changesets.StackDeployment:
        template = moto_variant("service.yaml", {**handed, "ImageTag": image_tag})
        return changesets.deploy_stack(
            cloudformation, stack_name="skycart-stage-service", environment="stage", template=template,
            template_body=json.dumps(template), parameters={**given, "ImageTag": image_tag}, poll_seconds=0.1,
        )  # fmt: skip

    assert release("0123abcd").outcome == "deployed"
    (cluster,) = ecs.list_clusters()["clusterArns"]
    (service,) = ecs.describe_services(cluster=cluster, services=ecs.list_services(cluster=cluster)["serviceArns"])[
        "services"
    ]
    assert service["desiredCount"] == int(given["MinTasks"]) == 2

    assert release("4567ef01").outcome == "deployed"
    values = {
        p["ParameterKey"]: p["ParameterValue"] for p in stack(cloudformation, "skycart-stage-service")["Parameters"]
    }
    assert (values["InitialDesiredCount"], values["ImageTag"]) == ("0", "4567ef01")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, "CREATE"),
        ("REVIEW_IN_PROGRESS", "CREATE"),
        ("UPDATE_ROLLBACK_COMPLETE", "UPDATE"),
        ("CREATE_COMPLETE", "UPDATE"),
    ],
)
def test_a_stack_that_does_not_exist_yet_is_created_otherwise_updated(status: str | None, expected: str) -> None:
    assert changesets.change_set_type(status) == expected


@pytest.mark.parametrize(
    "status", ["ROLLBACK_COMPLETE", "UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_FAILED", "DELETE_FAILED"]
)
def test_a_stack_in_a_state_no_change_set_can_follow_is_refused(status: str) -> None:
    with pytest.raises(changesets.StackNotDeployable):
        changesets.change_set_type(status)


def event(status: str, reason: str = "", logical_id: str = "Queue") -> changesets.StackEvent:
    return changesets.StackEvent(
        event_id=f"{logical_id}-{status}", timestamp=datetime.now(UTC), stack_name="skycart-dev",
        logical_id=logical_id, physical_id="", resource_type="AWS::SQS::Queue", status=status, reason=reason,
    )  # fmt: skip


def test_failed_events_are_the_ones_with_a_failed_status_and_carry_their_reason() -> None:
    history = [
        event("CREATE_IN_PROGRESS"),
        event("CREATE_FAILED", "Resource handler returned message: queue name taken"),
        event("ROLLBACK_IN_PROGRESS", "The following resource(s) failed to create: [Queue]", "skycart-dev"),
        event("DELETE_COMPLETE"),
        event("ROLLBACK_COMPLETE", logical_id="skycart-dev"),
    ]

    (failed,) = changesets.failed_events(history)

    assert failed.reason == "Resource handler returned message: queue name taken"


def test_the_stack_has_settled_once_no_status_is_in_progress() -> None:
    moving = ["CREATE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"]
    settled = ["CREATE_COMPLETE", "UPDATE_COMPLETE", "ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED"]

    assert [changesets.is_settled(status) for status in moving] == [False, False, False]
    assert [changesets.is_settled(status) for status in settled] == [True, True, True, True]
    assert {"CREATE_COMPLETE", "UPDATE_COMPLETE"} <= changesets.SUCCEEDED
    assert not {"ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED"} & changesets.SUCCEEDED


REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
RUNNING = f"{REGISTRY}/skycart/dev@sha256:{'b' * 64}"


class ServiceStack:
    """service.yaml as the stack skycart-dev-service in moto, on the image skycart/dev:0123abcd.

    Moto falls short of CloudFormation in four ways that shape these tests:
    - A stack that a change set created has no outputs (moto builds them in CreateStack and UpdateStack
      only), and `stack deploy` finds the service through them: this stack is made with CreateStack and
      `stack deploy` updates it. Stacks that `stack deploy` creates are read through their resources.
    - An update re-registers a task definition from the raw CloudFormation properties (no camelCase, no
      Cpu) and misses parameters that reach it through a Condition: what an update hands CloudFormation is
      read from the stack's parameters, and the image they render from a stack moto creates with them.
    - It cannot reuse a List parameter's previous value, and reports it as a Python list: every deploy
      passes those again, and the rendering stack gets them as they were handed.
    """

    name = "skycart-dev-service"

    def __init__(self, endpoint: str, template: Path) -> None:
        self.account = MotoAccount(endpoint, "123456789012")
        handed = deploy_environment(self.account, "dev", nested=("Network",), with_bootstrap=False).handed("Service")
        template.write_text(json.dumps(moto_variant("service.yaml", handed)))
        self.outputs = create_stack(self.account, self.name, "service.yaml", {**handed, "ImageTag": "0123abcd"})
        image = set(ecs.IMAGE_PARAMETERS)
        self.parameters = [f"{k}={v}" for k, v in handed.items() if k not in {*changesets.OWNED_PARAMETERS, *image}]
        declared = load_template(TEMPLATE_DIR / "service.yaml")["Parameters"]
        self.lists = {k: handed[k] for k, v in declared.items() if v["Type"].startswith("List<")}
        self.endpoint, self.template = endpoint, template
        self.ecs = aws.client("ecs", endpoint, REGION)
        self.cloudformation = aws.client("cloudformation", endpoint, REGION)

    def deploy(self, *extra: str, stack_name: str = name) -> Any:
        arguments = ["stack", "deploy", "--env", "dev", "--stack-name", stack_name, "--template", str(self.template)]
        endpoint = ["--endpoint-url", self.endpoint, "--region", REGION, "--poll-seconds", "0.1"]
        lists = [f"--parameter={key}={value}" for key, value in self.lists.items()]
        return CliRunner(env=WIDE).invoke(app, [*arguments, *endpoint, *lists, *extra])

    def create(self, stack_name: str, *extra: str) -> Any:
        return self.deploy(
            *(f"--parameter={parameter}" for parameter in self.parameters), *extra, stack_name=stack_name
        )

    def service_deploy(self, image: str) -> Any:
        arguments = ["service", "deploy", "--env", "dev", "--image", image, "--endpoint-url", self.endpoint]
        located = ["--cluster", self.outputs["ClusterName"], "--service", self.outputs["ServiceName"]]
        return CliRunner(env=WIDE).invoke(app, [*arguments, *located, "--region", REGION, "--poll-seconds", "0.1"])

    def stack_parameters(self) -> dict[str, str]:
        (stack,) = self.cloudformation.describe_stacks(StackName=self.name)["Stacks"]
        return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}

    def running(self) -> str:
        """The image the service's current task definition runs."""
        cluster, service = self.outputs["ClusterName"], self.outputs["ServiceName"]
        return ecs.running_image(self.ecs, cluster=cluster, service=service)

    def created_image(self, stack_name: str) -> str:
        """The app image of the task definition CloudFormation created for `stack_name`."""
        found = self.cloudformation.describe_stack_resource(StackName=stack_name, LogicalResourceId="TaskDefinition")
        arn = found["StackResourceDetail"]["PhysicalResourceId"]
        described = self.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        return ecs.container_image(described, container=ecs.APP_CONTAINER)

    def rendered(self) -> str:
        """The app image that the stack's current parameters give a task definition CloudFormation creates."""
        parameters = {**self.stack_parameters(), **self.lists}
        create_stack(self.account, "skycart-dev-rendered", "service.yaml", parameters)
        return self.created_image("skycart-dev-rendered")


@pytest.fixture
def service_stack(leaves_no_state: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ServiceStack:
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "1")  # dev's MinTasks: service deploys complete at once
    return ServiceStack(leaves_no_state, tmp_path / "service.json")


def test_creating_a_stack_without_an_image_is_refused_with_what_to_pass(service_stack: ServiceStack) -> None:
    result = service_stack.create("skycart-qa-service")

    assert result.exit_code == 2
    assert "creating skycart-qa-service needs the image to run" in result.output
    assert "--parameter ImageDigest=sha256:" in result.output
    assert changesets.stack_status(service_stack.cloudformation, stack_name="skycart-qa-service") is None


def test_a_tag_renders_as_repository_colon_tag_and_a_digest_as_repository_at_digest(
    service_stack: ServiceStack,
) -> None:
    result = service_stack.create("skycart-qa-service", "--parameter", f"ImageDigest=sha256:{'c' * 64}")

    assert result.exit_code == 0, result.output
    assert service_stack.created_image(service_stack.name) == f"{REGISTRY}/skycart/dev:0123abcd"
    assert service_stack.created_image("skycart-qa-service") == f"{REGISTRY}/skycart/dev@sha256:{'c' * 64}"


def test_a_stack_created_with_an_image_runs_it(service_stack: ServiceStack) -> None:
    result = service_stack.create("skycart-qa-service", "--image", RUNNING)

    assert result.exit_code == 0, result.output
    assert f"skycart-qa-service runs the image: {RUNNING}" in result.output
    assert service_stack.created_image("skycart-qa-service") == RUNNING


def test_a_stack_update_keeps_the_image_service_deploy_set(service_stack: ServiceStack) -> None:
    assert service_stack.service_deploy(RUNNING).exit_code == 0

    result = service_stack.deploy("--parameter", "TaskCpu=512")

    assert result.exit_code == 0, result.output
    assert f"skycart-dev-service keeps the image its service runs: {RUNNING}" in result.output
    parameters = service_stack.stack_parameters()
    assert (parameters["TaskCpu"], parameters["ImageDigest"]) == ("512", f"sha256:{'b' * 64}")
    assert service_stack.rendered() == RUNNING


def test_a_service_running_a_tag_keeps_that_tag(service_stack: ServiceStack) -> None:
    assert service_stack.service_deploy(f"{REGISTRY}/skycart/dev:4567ef01").exit_code == 0

    result = service_stack.deploy("--parameter", "TaskCpu=512")

    assert result.exit_code == 0, result.output
    assert service_stack.stack_parameters()["TaskCpu"] == "512"
    assert service_stack.rendered() == f"{REGISTRY}/skycart/dev:4567ef01"


def test_an_image_tag_given_replaces_a_kept_digest(service_stack: ServiceStack) -> None:
    assert service_stack.service_deploy(RUNNING).exit_code == 0
    assert service_stack.deploy("--parameter", "TaskCpu=512").exit_code == 0
    assert service_stack.stack_parameters()["ImageDigest"] == f"sha256:{'b' * 64}"

    result = service_stack.deploy("--parameter", "ImageTag=4567ef01")

    assert result.exit_code == 0, result.output
    assert "skycart-dev-service runs the image: skycart/dev:4567ef01" in result.output
    assert service_stack.rendered() == f"{REGISTRY}/skycart/dev:4567ef01"


def test_an_image_given_to_stack_deploy_replaces_the_running_one(service_stack: ServiceStack) -> None:
    assert service_stack.service_deploy(RUNNING).exit_code == 0
    pushed = f"{REGISTRY}/skycart/dev@sha256:{'c' * 64}"

    result = service_stack.deploy("--image", pushed)

    assert result.exit_code == 0, result.output
    assert f"skycart-dev-service runs the image: {pushed}" in result.output
    assert service_stack.stack_parameters()["ImageDigest"] == f"sha256:{'c' * 64}"
    assert service_stack.rendered() == pushed


def test_service_deploy_of_the_running_digest_under_a_tag_has_nothing_to_do(service_stack: ServiceStack) -> None:
    assert service_stack.service_deploy(RUNNING).exit_code == 0
    revisions = service_stack.ecs.list_task_definitions()["taskDefinitionArns"]

    result = service_stack.service_deploy(f"{REGISTRY}/skycart/dev:4567ef01@sha256:{'b' * 64}")

    assert result.exit_code == 0, result.output
    assert "already runs" in result.output
    assert service_stack.ecs.list_task_definitions()["taskDefinitionArns"] == revisions
    assert service_stack.running() == RUNNING


def test_a_running_image_of_another_repository_is_refused_until_the_image_is_chosen(
    service_stack: ServiceStack,
) -> None:
    elsewhere = f"{REGISTRY}/skycart/sandbox@sha256:{'d' * 64}"
    assert service_stack.service_deploy(elsewhere).exit_code == 0

    refused = service_stack.deploy("--parameter", "TaskCpu=512")
    chosen = service_stack.deploy("--parameter", "TaskCpu=512", "--parameter", "ImageTag=0123abcd")

    assert refused.exit_code == 1
    assert f"runs {elsewhere}, outside the stack's ImageRepositoryName skycart/dev" in refused.output
    assert chosen.exit_code == 0, chosen.output
    assert service_stack.stack_parameters()["TaskCpu"] == "512"
    assert service_stack.rendered() == f"{REGISTRY}/skycart/dev:0123abcd"


def test_an_image_outside_the_stacks_registry_is_refused(service_stack: ServiceStack) -> None:
    other_account = f"210987654321.dkr.ecr.eu-west-1.amazonaws.com/skycart/dev@sha256:{'e' * 64}"

    result = service_stack.deploy("--image", other_account)

    assert result.exit_code == 2
    assert "outside the stack's registry 123456789012.dkr.ecr.eu-west-1" in result.output
    assert service_stack.stack_parameters()["ImageTag"] == "0123abcd"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (RUNNING, ecs.ImageReference(REGISTRY, "skycart/dev", None, f"sha256:{'b' * 64}")),
        (f"{REGISTRY}/skycart/dev:0123abcd", ecs.ImageReference(REGISTRY, "skycart/dev", "0123abcd")),
        ("localhost:5000/skycart:1.2@sha256:ab", ecs.ImageReference("localhost:5000", "skycart", "1.2", "sha256:ab")),
        ("library/skycart", ecs.ImageReference("", "library/skycart")),
    ],
)
def test_an_image_uri_splits_into_registry_repository_tag_and_digest(uri: str, expected: ecs.ImageReference) -> None:
    assert ecs.ImageReference.parse(uri) == expected
