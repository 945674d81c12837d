"""`skycart-deploy secret ...`: The database secret: start a rotation and follow it."""

from __future__ import annotations

from typing import Annotated

import typer
from botocore.exceptions import ClientError
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from skycart_deploy import aws, rotation
from skycart_deploy.commands import options

app = typer.Typer(help="The database secret: start a rotation and follow it.", no_args_is_help=True)


@app.command()
def rotate(
    env: options.EnvOption,
    secret_id: Annotated[
        str | None,
        typer.Option(
            "--secret-id", help="The secret (default: the DatabaseSecretArn of the env's stacks).", show_default=False
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow the rotation until the new version is current.")
    ] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the new version.", min=1)] = 600,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would happen; change nothing.")] = False,
    endpoint_url: options.EndpointOption = None,
    region: options.RegionOption = None,
) -> None:
    """Rotate the environment's database secret (alternating users) and wait until the new password is live."""
    # Soft wrap keeps ARNs whole; emoji off keeps ":secret:" in an ARN from becoming a symbol.
    console = Console(soft_wrap=True, emoji=False)
    try:
        rotation.root_stack_name(env)
    except ValueError as problem:
        raise typer.BadParameter(str(problem), param_hint="--env") from problem
    secrets = aws.client("secretsmanager", endpoint_url, region)
    try:
        if secret_id is None:
            cloudformation = aws.client("cloudformation", endpoint_url, region)
            secret_id = rotation.app_secret_arn(cloudformation=cloudformation, environment=env)
        state = rotation.secret_state(secrets=secrets, secret_id=secret_id)
        if dry_run:
            _print_plan(console, state)
            return
        version, started = rotation.start_rotation(secrets=secrets, state=state)
    except (rotation.RotationError, ClientError) as problem:
        console.print(f"[red]{problem}[/]", highlight=False)
        raise typer.Exit(1) from problem
    verb = "started a rotation of" if started else "a rotation is already under way for"
    console.print(f"{verb} {state.arn}: new version {version}", highlight=False)
    if not wait:
        return
    try:
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task(f"version {version}: waiting", total=None)

            def _show(stages: list[str]) -> None:
                progress.update(task, description=f"version {version}: {', '.join(stages) or 'no labels'}")

            waited = rotation.follow_rotation(
                secrets=secrets, secret_id=state.arn, version_id=version, timeout=timeout, on_poll=_show
            )
    except (rotation.RotationError, ClientError) as problem:
        console.print(f"[red]{problem}[/]", highlight=False)
        raise typer.Exit(1) from problem
    console.print(f"[green]rotated[/]: version {version} is {rotation.CURRENT} after {waited:.0f} s", highlight=False)


def _print_plan(console: Console, state: rotation.SecretState) -> None:
    console.print(f"secret {state.arn} (current version {state.current_version})", highlight=False)
    if not state.rotation_enabled:
        console.print("[red]rotation is not enabled: a rotation would be refused[/]")
    elif state.pending_version:
        console.print(f"would follow the rotation already under way (version {state.pending_version})", highlight=False)
    else:
        console.print(
            f"would start a rotation with {state.rotation_function or 'its rotation function'}", highlight=False
        )
