"""Deploying a stack by change set: create it, show it, execute it, follow the stack until it settles.

One change set per release on the root stack `skycart-<env>` (with nested change sets), as
infra/README.md "Deploying" describes. A change set with nothing in it is deleted and the deploy is a
no-op, so running the same release twice changes nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import ClientError
from rich.console import Console
from rich.markup import escape

from skycart_deploy.progress import Poll, wait_for
from skycart_deploy.stacks import ENVIRONMENT_MAPPING, ENVIRONMENTS

CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND")
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
SUCCEEDED = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
UPDATABLE = SUCCEEDED | {"UPDATE_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"}
# Set by the tool, never by the caller: see infra/README.md "DesiredCount".
OWNED_PARAMETERS = ("Environment", "InitialDesiredCount")


class StackNotDeployable(RuntimeError):
    """The stack is in a state no change set can be made for."""


class ChangeSetFailed(RuntimeError):
    """CloudFormation could not create the change set (other than for having no changes)."""


def root_stack_name(environment: str) -> str:
    """`skycart-<env>`, the environment's root stack."""
    if environment not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {environment!r}: one of {', '.join(ENVIRONMENTS)}")
    return f"skycart-{environment}"


@dataclass(frozen=True)
class ResourceChange:
    """One row of a change set; nested stacks' rows carry the nested stack's logical id as a prefix."""

    action: str
    logical_id: str
    resource_type: str
    replacement: str


@dataclass(frozen=True)
class StackEvent:
    """One stack event, as describe_stack_events reports it."""

    event_id: str
    timestamp: datetime
    stack_name: str
    logical_id: str
    physical_id: str
    resource_type: str
    status: str
    reason: str

    @property
    def failed(self) -> bool:
        return self.status.endswith("_FAILED")


@dataclass
class StackDeployment:
    """What a deploy did: `outcome` is no-changes, dry-run, deployed or failed."""

    stack_name: str
    change_set_type: Literal["CREATE", "UPDATE"]
    outcome: Literal["no-changes", "dry-run", "deployed", "failed"]
    changes: list[ResourceChange] = field(default_factory=list)
    stack_status: str | None = None
    failed_events: list[StackEvent] = field(default_factory=list)
    error: str | None = None


def describe_stack(cloudformation: Any, *, stack_name: str) -> dict[str, Any] | None:
    """The stack as describe_stacks reports it, or None when there is no such stack."""
    try:
        (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in error.response["Error"]["Message"]:
            return None
        raise
    return stack


def stack_status(cloudformation: Any, *, stack_name: str) -> str | None:
    """The stack's status, or None when there is no such stack."""
    stack = describe_stack(cloudformation, stack_name=stack_name)
    return stack["StackStatus"] if stack else None


def stack_outputs(cloudformation: Any, *, stack_name: str) -> dict[str, str]:
    """The stack's outputs by key."""
    (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def change_set_type(status: str | None) -> Literal["CREATE", "UPDATE"]:
    """CREATE for a stack that does not exist yet (or only holds change sets), UPDATE otherwise."""
    if status is None or status == "REVIEW_IN_PROGRESS":
        return "CREATE"
    if status == "ROLLBACK_COMPLETE":
        raise StackNotDeployable("its creation failed and was rolled back (ROLLBACK_COMPLETE): delete it, then deploy")
    if status not in UPDATABLE:
        raise StackNotDeployable(f"it is {status}; deploy once it has settled")
    return "UPDATE"


def stack_parameters(
    *,
    template: Mapping[str, Any],
    environment: str,
    given: Mapping[str, str],
    creating: bool,
    existing: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """Parameters for the change set: Environment, InitialDesiredCount, the given ones, the rest kept as they are.

    InitialDesiredCount is the environment's MinTasks when the stack is created and 0 on every update,
    never the previous value (infra/README.md "DesiredCount").
    """
    declared = template.get("Parameters", {})
    owned = sorted(set(OWNED_PARAMETERS) & set(given))
    if owned:
        raise ValueError(f"{', '.join(owned)} is set by the deploy tooling, not by --parameter")
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ValueError(f"the template has no parameter {', '.join(unknown)}")
    values = dict(given)
    if "Environment" in declared:
        values["Environment"] = environment
    if "InitialDesiredCount" in declared:
        values["InitialDesiredCount"] = _min_tasks(template, environment, given) if creating else "0"
    listed: list[dict[str, Any]] = [
        {"ParameterKey": key, "ParameterValue": str(value)} for key, value in values.items()
    ]
    # As `aws cloudformation deploy` does: a parameter not given keeps the stack's current value.
    kept = sorted((set(declared) & existing) - set(values))
    return listed + [{"ParameterKey": key, "UsePreviousValue": True} for key in kept]


def _min_tasks(template: Mapping[str, Any], environment: str, given: Mapping[str, str]) -> str:
    row = template.get("Mappings", {}).get(ENVIRONMENT_MAPPING, {}).get(environment, {})
    if "MinTasks" in row:
        return str(row["MinTasks"])
    if "MinTasks" in given:
        return str(given["MinTasks"])
    raise ValueError(f"InitialDesiredCount needs MinTasks: no {ENVIRONMENT_MAPPING} row and no MinTasks parameter")


def _existing_parameters(cloudformation: Any, stack_name: str) -> frozenset[str]:
    (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return frozenset(parameter["ParameterKey"] for parameter in stack.get("Parameters", []))


def is_no_changes(reason: str) -> bool:
    """True when a change set failed only because there was nothing to change."""
    return any(marker in reason for marker in NO_CHANGES)


def change_rows(cloudformation: Any, *, change_set_id: str, prefix: str = "") -> list[ResourceChange]:
    """Every resource change of the change set, nested change sets' rows included."""
    rows: list[ResourceChange] = []
    request = {"ChangeSetName": change_set_id}
    while True:
        page = cloudformation.describe_change_set(**request)
        for change in page.get("Changes", []):
            resource = change.get("ResourceChange", {})
            logical_id = f"{prefix}{resource.get('LogicalResourceId', '')}"
            rows.append(
                ResourceChange(
                    action=resource.get("Action", ""),
                    logical_id=logical_id,
                    resource_type=resource.get("ResourceType", ""),
                    replacement=resource.get("Replacement", ""),
                )
            )
            if resource.get("ResourceType") == "AWS::CloudFormation::Stack" and resource.get("ChangeSetId"):
                rows += change_rows(cloudformation, change_set_id=resource["ChangeSetId"], prefix=f"{logical_id}/")
        if not page.get("NextToken"):
            return rows
        request["NextToken"] = page["NextToken"]


def stack_events(
    cloudformation: Any, *, stack_name: str, after: str | None = None, since: datetime | None = None
) -> list[StackEvent]:
    """The stack's events newer than the event id `after` and not older than `since`, oldest first."""
    found: list[StackEvent] = []
    request = {"StackName": stack_name}
    while True:
        page = cloudformation.describe_stack_events(**request)
        for event in page["StackEvents"]:
            if event["EventId"] == after or (since is not None and event["Timestamp"] < since):
                return found[::-1]
            found.append(_event(event))
        if not page.get("NextToken"):
            return found[::-1]
        request["NextToken"] = page["NextToken"]


def _latest_event_id(cloudformation: Any, stack_name: str) -> str | None:
    events = cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
    return events[0]["EventId"] if events else None


def _event(event: Mapping[str, Any]) -> StackEvent:
    return StackEvent(
        event_id=event["EventId"],
        timestamp=event["Timestamp"],
        stack_name=event["StackName"],
        logical_id=event["LogicalResourceId"],
        physical_id=event.get("PhysicalResourceId", ""),
        resource_type=event.get("ResourceType", ""),
        status=event["ResourceStatus"],
        reason=event.get("ResourceStatusReason", ""),
    )


def is_settled(status: str) -> bool:
    """True once the stack stopped moving (any status but *_IN_PROGRESS)."""
    return not status.endswith("_IN_PROGRESS")


def failed_events(events: list[StackEvent]) -> list[StackEvent]:
    """The events that say why a deploy failed: *_FAILED ones with their reason."""
    return [event for event in events if event.failed]


def nested_failures(cloudformation: Any, *, events: list[StackEvent], since: datetime) -> list[StackEvent]:
    """The failures inside nested stacks that failed, since `since` (the root only says "embedded stack failed")."""
    found: list[StackEvent] = []
    for event in failed_events(events):
        # A nested stack's own stack-level events name the nested stack itself; only the parent's row leads in.
        if event.resource_type == "AWS::CloudFormation::Stack" and event.logical_id != event.stack_name:
            recent = stack_events(cloudformation, stack_name=event.physical_id, since=since)
            found += failed_events(recent) + nested_failures(cloudformation, events=recent, since=since)
    return found


def deploy_stack(
    cloudformation: Any,
    *,
    stack_name: str,
    environment: str,
    template_body: str,
    template: Mapping[str, Any],
    parameters: Mapping[str, str] | None = None,
    role_arn: str | None = None,
    dry_run: bool = False,
    review: Callable[[list[ResourceChange]], None] | None = None,
    console: Console | None = None,
    poll_seconds: float = 5.0,
    timeout: float = 3600.0,
) -> StackDeployment:
    """Create a change set, hand its changes to `review`, then execute it and follow the stack to the end."""
    status = stack_status(cloudformation, stack_name=stack_name)
    kind = change_set_type(status)
    existing = _existing_parameters(cloudformation, stack_name) if kind == "UPDATE" else frozenset()
    request: dict[str, Any] = {
        "StackName": stack_name,
        "ChangeSetName": f"skycart-deploy-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}",
        "ChangeSetType": kind,
        "TemplateBody": template_body,
        "Parameters": stack_parameters(
            template=template,
            environment=environment,
            given=parameters or {},
            creating=kind == "CREATE",
            existing=existing,
        ),
        "Capabilities": list(CAPABILITIES),
        "Description": f"skycart-deploy {environment}",
    }
    if role_arn:
        request["RoleARN"] = role_arn
    if any(r.get("Type") == "AWS::CloudFormation::Stack" for r in template.get("Resources", {}).values()):
        request["IncludeNestedStacks"] = True
    try:
        created = cloudformation.create_change_set(**request)
    except ClientError as error:
        if is_no_changes(error.response["Error"]["Message"]):
            return StackDeployment(stack_name, kind, "no-changes", stack_status=status)
        raise
    change_set_id = created["Id"]

    def discard() -> None:
        cloudformation.delete_change_set(ChangeSetName=change_set_id)
        # A CREATE change set made an empty REVIEW_IN_PROGRESS stack; it was not there before, so it goes too.
        if status is None:
            cloudformation.delete_stack(StackName=created["StackId"])

    def look() -> Poll[dict[str, Any]]:
        described = cloudformation.describe_change_set(ChangeSetName=change_set_id)
        settled = described["Status"] in ("CREATE_COMPLETE", "FAILED")
        return Poll(done=settled, value=described, status=described["Status"])

    described = wait_for(
        look, description=f"change set on {stack_name}", timeout=timeout, interval=poll_seconds, console=console
    ).value
    if described["Status"] == "FAILED":
        discard()
        reason = described.get("StatusReason", "")
        if is_no_changes(reason):
            return StackDeployment(stack_name, kind, "no-changes", stack_status=status)
        raise ChangeSetFailed(reason)
    changes = change_rows(cloudformation, change_set_id=change_set_id)
    if review is not None:
        review(changes)
    if dry_run:
        discard()
        return StackDeployment(stack_name, kind, "dry-run", changes=changes, stack_status=status)
    return _execute(
        cloudformation,
        stack_name=stack_name,
        kind=kind,
        change_set_id=change_set_id,
        changes=changes,
        console=console,
        poll_seconds=poll_seconds,
        timeout=timeout,
    )


def _execute(
    cloudformation: Any,
    *,
    stack_name: str,
    kind: Literal["CREATE", "UPDATE"],
    change_set_id: str,
    changes: list[ResourceChange],
    console: Console | None,
    poll_seconds: float,
    timeout: float,
) -> StackDeployment:
    after = _latest_event_id(cloudformation, stack_name)
    seen: list[StackEvent] = []
    result = StackDeployment(stack_name, kind, "deployed", changes=changes)
    try:
        cloudformation.execute_change_set(ChangeSetName=change_set_id)
    except ClientError as error:
        result.outcome, result.error = "failed", error.response["Error"]["Message"]
        result.stack_status = stack_status(cloudformation, stack_name=stack_name)
        return result

    def look() -> Poll[str]:
        nonlocal after
        new = stack_events(cloudformation, stack_name=stack_name, after=after)
        if new:
            after = new[-1].event_id
        seen.extend(new)
        status = stack_status(cloudformation, stack_name=stack_name) or "DELETE_COMPLETE"
        lines = tuple(_event_line(event) for event in new)
        return Poll(done=is_settled(status), value=status, status=status, lines=lines)

    result.stack_status = wait_for(
        look, description=f"{kind.lower()} {stack_name}", timeout=timeout, interval=poll_seconds, console=console
    ).value
    if result.stack_status not in SUCCEEDED:
        result.outcome = "failed"
        result.failed_events = failed_events(seen)
        if seen:
            result.failed_events += nested_failures(cloudformation, events=seen, since=seen[0].timestamp)
    return result


def _event_line(event: StackEvent) -> str:
    if event.failed or "ROLLBACK" in event.status:
        colour = "red"
    else:
        colour = "green" if event.status.endswith("_COMPLETE") else "dim"
    reason = f" {escape(event.reason)}" if event.reason else ""
    return f"[{colour}]{event.status}[/] {escape(event.logical_id)} {event.resource_type}{reason}"
