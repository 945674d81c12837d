"""Container images: build with a docker-compatible CLI, push to ECR under the commit SHA, deploy by digest.

docker, podman and buildah take the same `build`, `login` and `push` arguments, so the builder is just
the name of an executable. The registry password goes to `login` on stdin only: never on a command
line (visible in the process list) and never in output.
"""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

COMMIT_SHA = re.compile(r"[0-9a-fA-F]{7,40}")
# What a registry accepts as a tag (and skycart.yaml's ImageTag pattern).
ANY_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# Fargate tasks run on X86_64 unless the task definition says otherwise (service.yaml does not).
DEFAULT_PLATFORM = "linux/amd64"


class InvalidTag(ValueError):
    """The tag is not a commit SHA (or not a tag at all)."""


class RepositoryNotFound(LookupError):
    """ECR has no such repository."""


class ImageNotFound(LookupError):
    """ECR has no image with that tag."""


class CommandFailed(RuntimeError):
    """The builder exited non-zero or could not be started."""

    def __init__(self, command: Sequence[str], message: str, returncode: int | None = None) -> None:
        super().__init__(f"`{' '.join(command)}` {message}")
        self.returncode = returncode


@dataclass(frozen=True)
class Repository:
    """An ECR repository: its name, its URI and the registry (account) it lives in."""

    name: str
    uri: str
    registry_id: str


@dataclass(frozen=True)
class RegistryLogin:
    """Credentials for `<builder> login`, valid for 12 hours."""

    registry: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class PushedImage:
    """Where an image landed in ECR; deploy `by_digest`, which no later push can move."""

    uri: str
    tag: str
    digest: str
    pushed: bool

    @property
    def by_tag(self) -> str:
        return f"{self.uri}:{self.tag}"

    @property
    def by_digest(self) -> str:
        return f"{self.uri}@{self.digest}"


def check_tag(tag: str, *, allow_any: bool = False) -> str:
    """`tag` if it is a commit SHA (7 to 40 hex digits), or any valid tag when `allow_any`."""
    if allow_any:
        if not ANY_TAG.fullmatch(tag):
            raise InvalidTag(f"{tag!r} is not a valid image tag")
    elif not COMMIT_SHA.fullmatch(tag):
        raise InvalidTag(f"{tag!r} is not a commit SHA (7 to 40 hex digits); images are tagged by commit")
    return tag


def image_reference(*, repository_uri: str, tag: str) -> str:
    """`repository:tag`, refusing a repository that already names a tag or a digest."""
    last = repository_uri.rsplit("/", 1)[-1]
    if ":" in last or "@" in repository_uri:
        raise ValueError(f"{repository_uri!r} already has a tag or digest; pass the repository only")
    return f"{repository_uri}:{tag}"


def build_command(
    *,
    builder: str,
    image: str,
    context: Path,
    dockerfile: Path | None = None,
    platform: str | None = DEFAULT_PLATFORM,
    revision: str | None = None,
) -> list[str]:
    """The `<builder> build` command line for `image` (repository:tag)."""
    command = [builder, "build", "--tag", image]
    if Path(builder).name in ("podman", "buildah"):
        command += ["--format", "docker"]  # OCI images drop HEALTHCHECK; ECS reads the Docker format too
    if dockerfile is not None:
        command += ["--file", str(dockerfile)]
    if platform:
        command += ["--platform", platform]
    if revision:
        command += ["--label", f"org.opencontainers.image.revision={revision}"]
    return [*command, str(context)]


def login_command(*, builder: str, registry: str) -> list[str]:
    """The `<builder> login` command line; the password is written to its stdin."""
    return [builder, "login", "--username", "AWS", "--password-stdin", registry]


def push_command(*, builder: str, image: str) -> list[str]:
    """The `<builder> push` command line for `image` (repository:tag)."""
    return [builder, "push", image]


def resolve_repository(ecr: Any, *, name_or_uri: str) -> Repository:
    """The repository named `skycart/dev` or addressed as `<account>.dkr.ecr.<region>.amazonaws.com/skycart/dev`."""
    host, _, path = name_or_uri.partition("/")
    is_uri = "." in host and bool(path)
    name = path if is_uri else name_or_uri
    lookup: dict[str, Any] = {"repositoryNames": [name]}
    if is_uri:
        lookup["registryId"] = host.split(".", 1)[0]
    try:
        (found,) = ecr.describe_repositories(**lookup)["repositories"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "RepositoryNotFoundException":
            raise RepositoryNotFound(f"no ECR repository {name!r}") from error
        raise
    # Push under the name the image was built with; ECR's own URI otherwise.
    return Repository(
        name=found["repositoryName"],
        uri=name_or_uri if is_uri else found["repositoryUri"],
        registry_id=found["registryId"],
    )


def registry_login(ecr: Any, *, registry_id: str | None = None) -> RegistryLogin:
    """Decode ECR's authorization token (base64 of "AWS:<password>") for `<builder> login`."""
    request = {"registryIds": [registry_id]} if registry_id else {}
    (data,) = ecr.get_authorization_token(**request)["authorizationData"]
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    registry = data["proxyEndpoint"].removeprefix("https://").removeprefix("http://")
    return RegistryLogin(registry=registry, username=username, password=password)


def image_digest(ecr: Any, *, repository: Repository, tag: str) -> str | None:
    """The digest (sha256:...) ECR holds under `tag`, or None when there is no such image."""
    try:
        found = ecr.describe_images(
            registryId=repository.registry_id, repositoryName=repository.name, imageIds=[{"imageTag": tag}]
        )["imageDetails"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ImageNotFoundException":
            return None
        raise
    return found[0]["imageDigest"] if found else None


def run(command: Sequence[str], *, stdin: str | None = None, capture: bool = False) -> str:
    """Run one builder command; its output streams through unless `capture`. Raises CommandFailed."""
    try:
        finished = subprocess.run(
            list(command),
            input=stdin,
            capture_output=capture,
            text=True,
            check=False,
            stdin=None if stdin is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError as missing:
        raise CommandFailed(command, f"could not start: {command[0]} is not installed or not on PATH") from missing
    if finished.returncode != 0:
        said = (finished.stderr or finished.stdout or "").strip() if capture else ""
        raise CommandFailed(
            command, f"exited with {finished.returncode}" + (f": {said}" if said else ""), finished.returncode
        )
    return finished.stdout or ""


def build_image(
    *,
    builder: str,
    repository_uri: str,
    tag: str,
    context: Path,
    dockerfile: Path | None = None,
    platform: str | None = DEFAULT_PLATFORM,
    allow_any_tag: bool = False,
    dry_run: bool = False,
) -> list[str]:
    """Build `repository_uri:tag` from `context`; returns the command line (only printed when `dry_run`)."""
    check_tag(tag, allow_any=allow_any_tag)
    command = build_command(
        builder=builder,
        image=image_reference(repository_uri=repository_uri, tag=tag),
        context=context,
        dockerfile=dockerfile,
        platform=platform,
        revision=tag if COMMIT_SHA.fullmatch(tag) else None,
    )
    if not dry_run:
        run(command)
    return command


@dataclass(frozen=True)
class PushPlan:
    """What `push_image` does: nothing when ECR already holds the tag (tags are immutable)."""

    repository: Repository
    tag: str
    existing_digest: str | None
    commands: list[list[str]]


def plan_push(ecr: Any, *, builder: str, repository: str, tag: str, allow_any_tag: bool = False) -> PushPlan:
    """Look up the repository and the tag; the login and push commands when the tag is not in ECR yet."""
    check_tag(tag, allow_any=allow_any_tag)
    found = resolve_repository(ecr, name_or_uri=repository)
    existing = image_digest(ecr, repository=found, tag=tag)
    commands = []
    if existing is None:
        # Log in to the host the image is named after, so the push finds its credentials.
        registry = found.uri.split("/", 1)[0]
        commands = [
            login_command(builder=builder, registry=registry),
            push_command(builder=builder, image=image_reference(repository_uri=found.uri, tag=tag)),
        ]
    return PushPlan(repository=found, tag=tag, existing_digest=existing, commands=commands)


def push_image(ecr: Any, *, plan: PushPlan) -> PushedImage:
    """Log in to ECR (password on stdin), push, and read back the digest ECR stored."""
    if plan.existing_digest is not None:
        return PushedImage(uri=plan.repository.uri, tag=plan.tag, digest=plan.existing_digest, pushed=False)
    login, push = plan.commands
    run(login, stdin=registry_login(ecr, registry_id=plan.repository.registry_id).password, capture=True)
    run(push)
    digest = image_digest(ecr, repository=plan.repository, tag=plan.tag)
    if digest is None:
        raise ImageNotFound(f"the push finished, but ECR has no image {plan.repository.name}:{plan.tag}")
    return PushedImage(uri=plan.repository.uri, tag=plan.tag, digest=digest, pushed=True)
