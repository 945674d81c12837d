"""`skycart-deploy service ...`: The ECS service: deploy a new image as a new task-definition revision."""

from __future__ import annotations

from typing import Annotated

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.markup import escape

from skycart_deploy import aws, ecs
from skycart_deploy.commands import options
from skycart_deploy.progress import WaitTimedOut

app = typer.Typer(help="The ECS service: deploy a new image as a new task-definition revision.", no_args_is_help=True)


@app.command()
def deploy(
    env: options.EnvOption,
    image: Annotated[str, typer.Option("--image", help="Image to run, best by digest (repository@sha256:...).")],
    cluster: Annotated[
        str | None, typer.Option("--cluster", help="Default: the root stack's ClusterName output.", show_default=False)
    ] = None,
    service: Annotated[
        str | None, typer.Option("--service", help="Default: the root stack's ServiceName output.", show_default=False)
    ] = None,
    container: Annotated[str, typer.Option("--container", help="The container that runs the image.")] = (
        ecs.APP_CONTAINER
    ),
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the service to be stable.")] = 1800.0,
    poll_seconds: Annotated[float, typer.Option("--poll-seconds", help="Seconds between looks at the service.")] = 10.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would change; change nothing.")] = False,
    endpoint_url: options.EndpointOption = None,
    region: options.RegionOption = None,
) -> None:
    """Register a revision of the service's task definition running IMAGE, update the service, wait until stable."""
    console = Console()
    try:
        cluster, service = ecs.locate_service(
            aws.client("cloudformation", endpoint_url, region), environment=env, cluster=cluster, service=service
        )
    except ValueError as problem:
        raise typer.BadParameter(str(problem), param_hint="--env") from problem
    except (ecs.ServiceNotFound, ClientError, BotoCoreError) as missing:
        console.print(f"[red]cannot find the service[/]: {escape(str(missing))}", highlight=False)
        raise typer.Exit(1) from missing
    try:
        result = ecs.deploy_service(
            aws.client("ecs", endpoint_url, region),
            cluster=cluster,
            service=service,
            image=image,
            container=container,
            dry_run=dry_run,
            console=console,
            poll_seconds=poll_seconds,
            timeout=timeout,
        )
    except (ecs.ServiceNotFound, ecs.ContainerNotFound, ClientError, BotoCoreError) as missing:
        console.print(f"[red]{escape(str(missing))}[/]", highlight=False)
        raise typer.Exit(1) from missing
    except ecs.DeploymentFailed as failed:
        console.print(f"[red]deploy failed[/]: {escape(str(failed))}", highlight=False)
        raise typer.Exit(1) from failed
    except WaitTimedOut as slow:
        console.print(f"[red]deploy not stable[/]: {escape(str(slow))}", highlight=False)
        raise typer.Exit(1) from slow
    if result.outcome == "unchanged":
        console.print(f"{service} already runs {image}: nothing to do", highlight=False, soft_wrap=True)
    elif result.outcome == "dry-run":
        console.print(
            f"would register a revision of {result.previous_task_definition} with {container} running {image} "
            f"(now {result.previous_image}) and update {service}; nothing changed",
            highlight=False,
            soft_wrap=True,
        )
    else:
        console.print(
            f"[green]{service} is stable[/] on {result.task_definition} ({image})", highlight=False, soft_wrap=True
        )
