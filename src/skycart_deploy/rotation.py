"""Starting a rotation of an environment's database secret, and following it until the new version is live.

The rotation itself runs in the rotation Lambda (`lambdas/db_secret_rotation.py`); from here we only ask
Secrets Manager to start one and watch the new version's staging labels until it is AWSCURRENT.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from skycart_deploy.stacks import ENVIRONMENTS

CURRENT, PENDING = "AWSCURRENT", "AWSPENDING"
# The root stack does not output the secret; the nested data stack does.
DATA_STACK = "Data"
SECRET_OUTPUT = "DatabaseSecretArn"


class RotationError(RuntimeError):
    """A rotation could not be started or did not finish."""


class SecretNotFound(RotationError):
    """The environment's stack does not lead to a database secret."""


class RotationNotConfigured(RotationError):
    """The secret has no rotation function (the rotation stack is not deployed)."""


class RotationTimedOut(RotationError):
    """The new version did not become AWSCURRENT in time."""


class RotationAbandoned(RotationError):
    """The new version lost its staging labels without becoming AWSCURRENT."""


def root_stack_name(environment: str) -> str:
    """`skycart-<env>`, the environment's root stack."""
    if environment not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {environment!r}; expected one of {', '.join(ENVIRONMENTS)}")
    return f"skycart-{environment}"


def app_secret_arn(*, cloudformation: Any, environment: str) -> str:
    """The app's database secret: the root stack's output if it has one, else its data stack's."""
    stack = root_stack_name(environment)
    outputs = _outputs(cloudformation, stack)
    if SECRET_OUTPUT in outputs:
        return outputs[SECRET_OUTPUT]
    try:
        detail = cloudformation.describe_stack_resource(StackName=stack, LogicalResourceId=DATA_STACK)
    except ClientError as error:
        raise SecretNotFound(f"stack {stack} has no nested stack {DATA_STACK}") from error
    nested = detail["StackResourceDetail"].get("PhysicalResourceId")
    found = _outputs(cloudformation, nested) if nested else {}
    if SECRET_OUTPUT not in found:
        raise SecretNotFound(f"the {DATA_STACK} stack of {stack} has no output {SECRET_OUTPUT}")
    return found[SECRET_OUTPUT]


@dataclass(frozen=True)
class SecretState:
    """What Secrets Manager says about a secret's rotation."""

    arn: str
    name: str
    rotation_enabled: bool
    rotation_function: str | None
    current_version: str
    # A version staged AWSPENDING but not AWSCURRENT: a rotation that has not finished.
    pending_version: str | None


def secret_state(*, secrets: Any, secret_id: str) -> SecretState:
    """Read the secret's rotation settings and versions."""
    try:
        metadata = secrets.describe_secret(SecretId=secret_id)
    except secrets.exceptions.ResourceNotFoundException as error:
        raise SecretNotFound(f"no secret {secret_id}") from error
    stages = metadata.get("VersionIdsToStages", {})
    current = next((version for version, labels in stages.items() if CURRENT in labels), None)
    if current is None:
        raise RotationError(f"secret {secret_id} has no {CURRENT} version")
    pending = next((v for v, labels in stages.items() if PENDING in labels and CURRENT not in labels), None)
    return SecretState(
        arn=metadata["ARN"],
        name=metadata["Name"],
        rotation_enabled=bool(metadata.get("RotationEnabled")),
        rotation_function=metadata.get("RotationLambdaARN") or None,
        current_version=current,
        pending_version=pending,
    )


def start_rotation(*, secrets: Any, state: SecretState) -> tuple[str, bool]:
    """Start a rotation and return its version, or the version of the one already under way (and False)."""
    if not state.rotation_enabled:
        raise RotationNotConfigured(f"rotation is not enabled for {state.name}; deploy the rotation stack first")
    if state.pending_version is not None:
        return state.pending_version, False
    started = secrets.rotate_secret(SecretId=state.arn, ClientRequestToken=str(uuid.uuid4()))
    return started["VersionId"], True


def version_stages(*, secrets: Any, secret_id: str, version_id: str) -> list[str]:
    """The staging labels on one version (none: the version is gone or deprecated)."""
    return list(secrets.describe_secret(SecretId=secret_id).get("VersionIdsToStages", {}).get(version_id, []))


def follow_rotation(
    *,
    secrets: Any,
    secret_id: str,
    version_id: str,
    timeout: float,
    interval: float = 2.0,
    on_poll: Callable[[list[str]], None] | None = None,
) -> float:
    """Poll until `version_id` is AWSCURRENT and return the seconds it took; `on_poll` sees each poll's labels."""
    started = time.monotonic()
    while True:
        stages = version_stages(secrets=secrets, secret_id=secret_id, version_id=version_id)
        if on_poll is not None:
            on_poll(stages)
        waited = time.monotonic() - started
        if CURRENT in stages:
            return waited
        if not stages:
            raise RotationAbandoned(f"version {version_id} of {secret_id} lost its labels; the rotation was replaced")
        if waited >= timeout:
            raise RotationTimedOut(
                f"version {version_id} of {secret_id} is still {', '.join(stages)} after {timeout:g} s; "
                "the rotation function's log tells why"
            )
        time.sleep(min(interval, timeout - waited))


def _outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    try:
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as error:
        raise SecretNotFound(f"no stack {stack}") from error
    return {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}
