"""Deploying an image to the ECS service: a new task-definition revision, then wait until the service is stable.

The new revision is the current one with only the app container's image changed, so everything
CloudFormation set (secrets, roles, limits, log configuration) carries over. The service runs with the
deployment circuit breaker (service.yaml): a deployment that cannot get healthy is rolled back by ECS,
and that rollback is a failed deploy here.

Since a revision registered here is not CloudFormation's, `stack_image` hands a stack deploy the image the
service runs (by digest), so that a stack update changes the task definition without changing its image.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError
from rich.console import Console

from skycart_deploy.changesets import describe_stack, root_stack_name, stack_outputs
from skycart_deploy.progress import Poll, wait_for

APP_CONTAINER = "app"
# The root and service templates build the app image from ImageRepositoryName and one of these.
IMAGE_PARAMETERS = ("ImageDigest", "ImageTag")
ECR_REGISTRY = re.compile(r"(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.[a-z0-9.-]+")
CHOOSE_IMAGE = "choose it with --image <repository>@sha256:… or --parameter ImageDigest=sha256:… (or ImageTag=…)"


class ServiceNotFound(LookupError):
    """No such ECS service (or cluster)."""


class ContainerNotFound(LookupError):
    """The task definition has no container by that name."""


class ImageRequired(ValueError):
    """Creating the stack needs the image to run."""


class ImageNotKept(RuntimeError):
    """The stack's image parameters cannot name the image the service runs (or the one given)."""


class DeploymentFailed(RuntimeError):
    """The deployment was rolled back, or replaced by another one, before it became stable."""

    def __init__(self, deployment: ServiceDeployment) -> None:
        detail = deployment.rollout.detail if deployment.rollout else "failed"
        super().__init__(f"{deployment.service}: {detail}")
        self.deployment = deployment


@dataclass(frozen=True)
class Rollout:
    """How a deployment of one task definition stands, read from describe_services."""

    state: Literal["in-progress", "stable", "failed"]
    detail: str
    running: int
    desired: int
    # Whether the service's PRIMARY deployment runs our task definition right now.
    ours_primary: bool = False


@dataclass
class ServiceDeployment:
    """What `deploy_service` did: `outcome` is unchanged, dry-run or deployed."""

    cluster: str
    service: str
    image: str
    previous_image: str
    previous_task_definition: str
    outcome: Literal["unchanged", "dry-run", "deployed"]
    task_definition: str | None = None
    rollout: Rollout | None = None


@dataclass(frozen=True)
class ImageReference:
    """An image URI in its parts: `registry/repository`, then `:tag`, `@digest` or both."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, uri: str) -> ImageReference:
        """Split `uri`; its first path part is the registry when it has a dot or a port, or is localhost."""
        name, _, digest = uri.partition("@")
        slash = name.rfind("/")
        last, _, tag = name[slash + 1 :].partition(":")
        path = name[: slash + 1] + last
        first, _, rest = path.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            return cls(first, rest, tag or None, digest or None)
        return cls("", path, tag or None, digest or None)

    def same_image(self, other: ImageReference) -> bool:
        """True when both name one image: the same repository and digest, or else the same reference."""
        if self.digest and other.digest:
            return (self.registry, self.repository, self.digest) == (other.registry, other.repository, other.digest)
        return self == other


@dataclass(frozen=True)
class StackImage:
    """The image parameters of a stack deploy: for the image given, or the one the service runs (kept)."""

    image: str
    parameters: dict[str, str]
    source: Literal["given", "kept"]


def locate_service(
    cloudformation: Any, *, environment: str, cluster: str | None = None, service: str | None = None
) -> tuple[str, str]:
    """Cluster and service: as given, else the root stack's ClusterName and ServiceName outputs."""
    if cluster and service:
        return cluster, service
    outputs = stack_outputs(cloudformation, stack_name=root_stack_name(environment))
    missing = [key for key in ("ClusterName", "ServiceName") if key not in outputs]
    if missing:
        raise ServiceNotFound(f"stack {root_stack_name(environment)} has no output {', '.join(missing)}")
    return cluster or outputs["ClusterName"], service or outputs["ServiceName"]


def describe_service(ecs: Any, *, cluster: str, service: str) -> dict[str, Any]:
    """The service as describe_services reports it; ServiceNotFound when it is missing or inactive."""
    try:
        found = ecs.describe_services(cluster=cluster, services=[service])["services"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ClusterNotFoundException":
            raise ServiceNotFound(f"no ECS cluster {cluster!r}") from error
        raise
    if not found or found[0]["status"] != "ACTIVE":
        raise ServiceNotFound(f"no active ECS service {service!r} in cluster {cluster!r}")
    return found[0]


def container_image(task_definition: Mapping[str, Any], *, container: str) -> str:
    """The image of `container` in the task definition."""
    for definition in task_definition["containerDefinitions"]:
        if definition["name"] == container:
            return definition["image"]
    names = ", ".join(definition["name"] for definition in task_definition["containerDefinitions"])
    raise ContainerNotFound(f"no container {container!r} in {task_definition['family']} (has: {names})")


def running_image(ecs: Any, *, cluster: str, service: str, container: str = APP_CONTAINER) -> str:
    """The image `container` runs in the service's current task definition."""
    current = describe_service(ecs, cluster=cluster, service=service)
    described = ecs.describe_task_definition(taskDefinition=current["taskDefinition"])
    return container_image(described["taskDefinition"], container=container)


def image_parameters(reference: ImageReference, *, declared: Mapping[str, Any]) -> dict[str, str]:
    """ImageDigest when the image has a digest (with its tag, if any), else ImageTag and an empty ImageDigest."""
    if reference.digest:
        if "ImageDigest" not in declared:
            raise ImageNotKept(f"the template takes no ImageDigest for {reference.digest}")
        parameters = {"ImageDigest": reference.digest}
        if reference.tag and "ImageTag" in declared:
            parameters["ImageTag"] = reference.tag
        return parameters
    if "ImageTag" not in declared:
        raise ImageNotKept(f"the template takes no ImageTag for {reference.repository}:{reference.tag}")
    parameters = {"ImageTag": reference.tag or "latest"}
    if "ImageDigest" in declared:
        parameters["ImageDigest"] = ""
    return parameters


def stack_image(
    cloudformation: Any,
    ecs: Any,
    *,
    stack_name: str,
    template: Mapping[str, Any],
    given: Mapping[str, str],
    image: str | None = None,
    container: str = APP_CONTAINER,
) -> StackImage | None:
    """The image parameters for deploying `template` to `stack_name`: `image`'s, else those of what the service runs.

    None when the template takes no image. Creating the stack needs an image (ImageRequired). An image outside
    the stack's repository is refused (ImageNotKept): the template would put the stack's registry and
    repository in front of its digest, which names another image.
    """
    declared = template.get("Parameters", {})
    chosen = sorted(set(IMAGE_PARAMETERS) & set(given))
    if image and chosen:
        raise ValueError(f"--image and --parameter {', '.join(chosen)} both choose the image: give one")
    if "ImageRepositoryName" not in declared or not set(IMAGE_PARAMETERS) & set(declared):
        if image:
            raise ValueError("the template takes no image (ImageRepositoryName and ImageDigest or ImageTag)")
        return None
    stack = describe_stack(cloudformation, stack_name=stack_name)
    current = {p["ParameterKey"]: p.get("ParameterValue", "") for p in (stack or {}).get("Parameters", [])}
    repository = given.get("ImageRepositoryName") or current.get("ImageRepositoryName")
    if chosen:
        if given.get("ImageDigest"):
            return StackImage(f"{repository}@{given['ImageDigest']}", {}, "given")
        # A tag given alone is what must run, and an ImageDigest kept from before would win over it.
        emptied = {"ImageDigest": ""} if chosen == ["ImageTag"] and "ImageDigest" in declared else {}
        return StackImage(f"{repository}:{given.get('ImageTag', '')}", emptied, "given")
    creating = stack is None or stack["StackStatus"] == "REVIEW_IN_PROGRESS"
    if creating and not image:
        raise ImageRequired(f"creating {stack_name} needs the image to run: {CHOOSE_IMAGE}")
    # The stack's ARN names the account and region whose registry the template puts in front of the image.
    registry = None if creating or stack is None else stack["StackId"].split(":")[3:5]
    if image:
        reference = ImageReference.parse(image)
        outside = _outside_the_stack(reference, repository=repository, registry=registry)
        if outside:
            raise ValueError(f"{image} is {outside}")
        parameters = image_parameters(reference, declared=declared)
        if repository is None:
            parameters["ImageRepositoryName"] = reference.repository
        return StackImage(image, parameters, "given")
    assert stack is not None  # creating needs an image, refused above without one
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    try:
        running = running_image(
            ecs, cluster=outputs["ClusterName"], service=outputs["ServiceName"], container=container
        )
    except (KeyError, ServiceNotFound, ContainerNotFound) as unknown:
        detail = f"no output {unknown}" if isinstance(unknown, KeyError) else str(unknown)
        raise ImageNotKept(
            f"cannot tell which image {stack_name}'s service runs ({detail}); {CHOOSE_IMAGE}"
        ) from unknown
    reference = ImageReference.parse(running)
    outside = _outside_the_stack(reference, repository=repository, registry=registry)
    if outside:
        raise ImageNotKept(f"{stack_name}'s service runs {running}, {outside}: {CHOOSE_IMAGE}")
    return StackImage(running, image_parameters(reference, declared=declared), "kept")


def _outside_the_stack(reference: ImageReference, *, repository: str | None, registry: list[str] | None) -> str | None:
    if repository is not None and reference.repository != repository:
        return f"outside the stack's ImageRepositoryName {repository}"
    if registry is not None:
        region, account = registry
        found = ECR_REGISTRY.fullmatch(reference.registry)
        if found is None or (found["account"], found["region"]) != (account, region):
            return f"outside the stack's registry {account}.dkr.ecr.{region}"
    return None


def registrable_fields(ecs: Any) -> frozenset[str]:
    """The fields register_task_definition accepts, from the API model the client was built with."""
    operation = ecs.meta.service_model.operation_model("RegisterTaskDefinition")
    return frozenset(operation.input_shape.members)


def with_image(
    task_definition: Mapping[str, Any],
    *,
    container: str,
    image: str,
    accepted: frozenset[str],
    tags: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A register_task_definition request: the revision as it is, but `container` runs `image`."""
    container_image(task_definition, container=container)
    request = {key: value for key, value in task_definition.items() if key in accepted}
    request["containerDefinitions"] = [
        {**definition, "image": image} if definition["name"] == container else dict(definition)
        for definition in task_definition["containerDefinitions"]
    ]
    if tags:
        request["tags"] = tags
    return request


def assess_rollout(service: Mapping[str, Any], *, task_definition_arn: str, was_primary: bool = False) -> Rollout:
    """Stable, failed (rolled back or replaced) or still in progress, for the deployment of `task_definition_arn`."""
    deployments = service.get("deployments", [])
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    counts = primary or service
    running, desired = int(counts.get("runningCount", 0)), int(counts.get("desiredCount", 0))
    ours_primary = bool(primary and primary.get("taskDefinition") == task_definition_arn)

    def outcome(state: Literal["in-progress", "stable", "failed"], detail: str) -> Rollout:
        return Rollout(state, detail, running, desired, ours_primary)

    for deployment in deployments:
        if deployment.get("taskDefinition") == task_definition_arn and deployment.get("rolloutState") == "FAILED":
            reason = deployment.get("rolloutStateReason") or "the deployment circuit breaker stopped it"
            return outcome("failed", f"deployment failed and was rolled back: {reason}")
    if service.get("taskDefinition") != task_definition_arn:
        return outcome("failed", f"rolled back: the service runs {service.get('taskDefinition')} again")
    if was_primary and not ours_primary:
        current = primary.get("taskDefinition") if primary else None
        return outcome("failed", f"rolled back: the primary deployment runs {current}")
    rollout_state = (primary or {}).get("rolloutState")
    if len(deployments) == 1 and primary and rollout_state in (None, "COMPLETED") and running == desired:
        return outcome("stable", f"{running}/{desired} tasks running")
    state = f", rollout {rollout_state}" if rollout_state else ""
    return outcome("in-progress", f"{running}/{desired} running, {len(deployments)} deployment(s){state}")


def wait_until_stable(
    ecs: Any,
    *,
    cluster: str,
    service: str,
    task_definition_arn: str,
    console: Console | None = None,
    poll_seconds: float = 10.0,
    timeout: float = 1800.0,
) -> Rollout:
    """Poll the service until the deployment is stable or failed; WaitTimedOut after `timeout` seconds."""
    was_primary = False

    def look() -> Poll[Rollout]:
        nonlocal was_primary
        rollout = assess_rollout(
            describe_service(ecs, cluster=cluster, service=service),
            task_definition_arn=task_definition_arn,
            was_primary=was_primary,
        )
        was_primary = was_primary or rollout.ours_primary
        return Poll(
            done=rollout.state != "in-progress",
            value=rollout,
            status=rollout.detail,
            completed=rollout.running,
            total=rollout.desired or None,
        )

    return wait_for(look, description=service, timeout=timeout, interval=poll_seconds, console=console).value


def deploy_service(
    ecs: Any,
    *,
    cluster: str,
    service: str,
    image: str,
    container: str = APP_CONTAINER,
    dry_run: bool = False,
    console: Console | None = None,
    poll_seconds: float = 10.0,
    timeout: float = 1800.0,
) -> ServiceDeployment:
    """Run `image` in the service's `container`: new revision, update_service, wait; DeploymentFailed on rollback."""
    current = describe_service(ecs, cluster=cluster, service=service)
    described = ecs.describe_task_definition(taskDefinition=current["taskDefinition"], include=["TAGS"])
    task_definition = described["taskDefinition"]
    result = ServiceDeployment(
        cluster=cluster,
        service=service,
        image=image,
        previous_image=container_image(task_definition, container=container),
        previous_task_definition=task_definition["taskDefinitionArn"],
        outcome="unchanged",
    )
    if ImageReference.parse(result.previous_image).same_image(ImageReference.parse(image)):
        return result
    request = with_image(
        task_definition, container=container, image=image, accepted=registrable_fields(ecs), tags=described.get("tags")
    )
    if dry_run:
        result.outcome = "dry-run"
        return result
    registered = ecs.register_task_definition(**request)["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster=cluster, service=service, taskDefinition=registered)
    result.outcome, result.task_definition = "deployed", registered
    result.rollout = wait_until_stable(
        ecs,
        cluster=cluster,
        service=service,
        task_definition_arn=registered,
        console=console,
        poll_seconds=poll_seconds,
        timeout=timeout,
    )
    if result.rollout.state == "failed":
        raise DeploymentFailed(result)
    return result
