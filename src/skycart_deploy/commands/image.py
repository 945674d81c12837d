"""`skycart-deploy image ...`: Container images: build with the docker CLI, push to ECR by commit SHA."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.markup import escape

from skycart_deploy import aws, images
from skycart_deploy.commands import options

app = typer.Typer(help="Container images: build with the docker CLI, push to ECR by commit SHA.", no_args_is_help=True)

TagOption = Annotated[str, typer.Option("--tag", help="The commit SHA (7 to 40 hex digits) the image is built from.")]
BuilderOption = Annotated[
    str, typer.Option("--builder", help="docker, podman or buildah: any executable taking docker's arguments.")
]
AllowAnyTagOption = Annotated[bool, typer.Option("--allow-any-tag", help="Accept a tag that is not a commit SHA.")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Print the commands; run nothing.")]


@app.command()
def build(
    repository: Annotated[
        str,
        typer.Option(
            "--repository",
            help="Image name or repository URI, e.g. skycart or <account>.dkr.ecr.<region>.amazonaws.com/skycart/dev",
        ),
    ],
    tag: TagOption,
    context: Annotated[Path, typer.Option("--context", help="Build context folder.")] = Path("."),
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Dockerfile (default: the builder's, in the context).", show_default=False),
    ] = None,
    builder: BuilderOption = "docker",
    platform: Annotated[str, typer.Option("--platform", help="Target platform (Fargate runs X86_64).")] = (
        images.DEFAULT_PLATFORM
    ),
    allow_any_tag: AllowAnyTagOption = False,
    dry_run: DryRunOption = False,
) -> None:
    """Build the image `<repository>:<tag>` with the builder CLI."""
    console = Console()
    try:
        command = images.build_image(
            builder=builder,
            repository_uri=repository,
            tag=tag,
            context=context,
            dockerfile=file,
            platform=platform,
            allow_any_tag=allow_any_tag,
            dry_run=dry_run,
        )
    except images.InvalidTag as invalid:
        raise typer.BadParameter(str(invalid), param_hint="--tag") from invalid
    except ValueError as invalid:
        raise typer.BadParameter(str(invalid), param_hint="--repository") from invalid
    except images.CommandFailed as failed:
        console.print(f"[red]image build failed[/]: {escape(str(failed))}", highlight=False)
        raise typer.Exit(1) from failed
    if dry_run:
        console.print(f"would run: {shlex.join(command)}", highlight=False, soft_wrap=True)
    else:
        console.print(f"[green]built[/] {repository}:{tag}", highlight=False, soft_wrap=True)


@app.command()
def push(
    repository: Annotated[str, typer.Option("--repository", help="ECR repository name (skycart/dev) or URI.")],
    tag: TagOption,
    builder: BuilderOption = "docker",
    allow_any_tag: AllowAnyTagOption = False,
    dry_run: DryRunOption = False,
    endpoint_url: options.EndpointOption = None,
    region: options.RegionOption = None,
) -> None:
    """Log in to ECR, push `<repository>:<tag>`, and print `<repository>@sha256:...` to deploy by digest."""
    console = Console()
    ecr = aws.client("ecr", endpoint_url, region)
    try:
        plan = images.plan_push(ecr, builder=builder, repository=repository, tag=tag, allow_any_tag=allow_any_tag)
    except images.InvalidTag as invalid:
        raise typer.BadParameter(str(invalid), param_hint="--tag") from invalid
    except ValueError as invalid:
        raise typer.BadParameter(str(invalid), param_hint="--repository") from invalid
    except (images.RepositoryNotFound, ClientError, BotoCoreError) as missing:
        console.print(f"[red]{escape(str(missing))}[/]", highlight=False)
        raise typer.Exit(1) from missing
    if plan.existing_digest is not None:
        console.print(f"{plan.repository.uri}:{tag} is already in ECR (tags are immutable): nothing to push")
    elif dry_run:
        login, push_image = plan.commands
        console.print(
            f"would run: {shlex.join(login)}  (password from ecr get-authorization-token, on stdin)",
            highlight=False,
            soft_wrap=True,
        )
        console.print(f"would run: {shlex.join(push_image)}", highlight=False, soft_wrap=True)
        return
    try:
        pushed = images.push_image(ecr, plan=plan)
    except (images.CommandFailed, images.ImageNotFound, ClientError, BotoCoreError) as failed:
        console.print(f"[red]image push failed[/]: {escape(str(failed))}", highlight=False)
        raise typer.Exit(1) from failed
    if pushed.pushed:
        console.print(f"[green]pushed[/] {pushed.by_tag}", highlight=False, soft_wrap=True)
    # The last line alone, unstyled, so a pipeline can capture it: what to deploy.
    typer.echo(pushed.by_digest)
