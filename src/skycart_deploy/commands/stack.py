"""`skycart-deploy stack ...`: the CloudFormation template set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from skycart_deploy import aws, changesets, ecs, packaging, stacks
from skycart_deploy.cfn import Unresolved, load_template
from skycart_deploy.commands import options
from skycart_deploy.progress import WaitTimedOut

app = typer.Typer(help="The CloudFormation templates in infra/cloudformation.", no_args_is_help=True)

RootTemplateOption = Annotated[
    Path | None,
    typer.Option("--template", help="Template file (default: the root template, skycart.yaml).", show_default=False),
]
TemplateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--templates", help="Template folder (default: infra/cloudformation here or above).", show_default=False
    ),
]


@app.command()
def render(
    env: Annotated[str | None, typer.Option("--env", "-e", help="One environment: dev, stage, qa or prod.")] = None,
    all_environments: Annotated[
        bool, typer.Option("--all", help="Every environment side by side (the default).")
    ] = False,
    only_differences: Annotated[bool, typer.Option("--differences", help="Only the rows that differ.")] = False,
    templates: TemplateDirOption = None,
) -> None:
    """Print what each environment resolves to: its sizes, retention and thresholds, and every Condition."""
    if env and all_environments:
        raise typer.BadParameter("--env and --all exclude each other")
    environments = (env,) if env else stacks.ENVIRONMENTS
    try:
        rows = stacks.render(environments, templates)
    except stacks.TemplatesNotFound as missing:
        raise typer.BadParameter(str(missing), param_hint="--templates") from missing
    except ValueError as problem:
        raise typer.BadParameter(str(problem), param_hint="--env") from problem
    console = Console()
    shown = [row for row in rows if row.differs or not only_differences]
    for section in dict.fromkeys(row.section for row in shown):
        console.print(_table(section, environments, [row for row in shown if row.section == section]))
    if not shown:
        console.print("nothing differs")
    elif len(environments) > 1:
        console.print("[bold yellow]≠[/] differs between environments")


@app.command()
def lint(
    templates: TemplateDirOption = None,
    checkov: Annotated[Path | None, typer.Option(help="checkov executable (default: .venv-tools/bin/checkov).")] = None,
) -> None:
    """Run cfn-lint (errors and warnings) and checkov on the templates; exit 1 on any finding."""
    console = Console()
    try:
        report = stacks.lint(templates, checkov=checkov)
    except (stacks.LintToolMissing, stacks.TemplatesNotFound) as missing:
        console.print(f"[red]{missing}[/]")
        raise typer.Exit(2) from missing
    for finding in report.findings:
        console.print(f"[red]{finding.tool}[/] {finding.rule} {finding.location}: {finding.message}", highlight=False)
    if not report.ok:
        console.print(f"[red]{len(report.findings)} finding(s)[/]")
        raise typer.Exit(1)
    console.print(f"[green]clean[/]: {', '.join(report.checked)}")


@app.command()
def deploy(
    env: options.EnvOption,
    template: RootTemplateOption = None,
    stack_name: Annotated[
        str | None, typer.Option("--stack-name", help="Stack (default: skycart-<env>).", show_default=False)
    ] = None,
    parameter: Annotated[
        list[str] | None,
        typer.Option("--parameter", "-p", help="K=V, repeatable; parameters not given keep their current value."),
    ] = None,
    image: Annotated[
        str | None,
        typer.Option(
            "--image",
            help="App image to run, best by digest (repository@sha256:...); default: the image the service runs now.",
            show_default=False,
        ),
    ] = None,
    role_arn: Annotated[
        str | None, typer.Option("--role-arn", help="Role CloudFormation deploys with.", show_default=False)
    ] = None,
    package_bucket: Annotated[
        str | None,
        typer.Option(
            "--package-bucket",
            help="Run `stack package` into this artifact bucket first and pass its parameters; it uploads even "
            "with --dry-run, since the change set reads the nested templates.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the change set, then delete it.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the stack.")] = 3600.0,
    poll_seconds: Annotated[float, typer.Option("--poll-seconds", help="Seconds between looks at the stack.")] = 5.0,
    endpoint_url: options.EndpointOption = None,
    region: options.RegionOption = None,
) -> None:
    """Deploy by change set: show the changes, execute them, follow the stack until it settles."""
    console = Console()
    try:
        name = stack_name or changesets.root_stack_name(env)
    except ValueError as problem:
        raise typer.BadParameter(str(problem), param_hint="--env") from problem
    path = _root_template(template)
    given = {}
    for item in parameter or []:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise typer.BadParameter(f"{item!r} is not K=V", param_hint="--parameter")
        given[key] = value
    twice = sorted(set(packaging.PARAMETERS) & set(given)) if package_bucket else []
    if twice:
        raise typer.BadParameter(f"{', '.join(twice)} come from --package-bucket", param_hint="--parameter")
    template_body = path.read_text(encoding="utf-8")
    loaded = load_template(path)
    cloudformation = aws.client("cloudformation", endpoint_url, region)
    # Before packaging: a stack that cannot be told its image is refused before anything is uploaded.
    given |= _image_parameters(
        console, cloudformation, aws.client("ecs", endpoint_url, region), stack_name=name, template=loaded,
        given=given, image=image,
    )  # fmt: skip
    if package_bucket:
        given |= _package(
            console, root_template=path, bucket=package_bucket, dry_run=False, endpoint_url=endpoint_url, region=region
        )

    def review(changes: list[changesets.ResourceChange]) -> None:
        console.print(_changes_table(name, changes))

    try:
        result = changesets.deploy_stack(
            cloudformation,
            stack_name=name,
            environment=env,
            template_body=template_body,
            template=loaded,
            parameters=given,
            role_arn=role_arn,
            dry_run=dry_run,
            review=review,
            console=console,
            poll_seconds=poll_seconds,
            timeout=timeout,
        )
    except ValueError as problem:
        raise typer.BadParameter(str(problem), param_hint="--parameter") from problem
    except (changesets.StackNotDeployable, changesets.ChangeSetFailed, ClientError, BotoCoreError) as refused:
        console.print(f"[red]cannot deploy {name}[/]: {escape(str(refused))}", highlight=False)
        raise typer.Exit(1) from refused
    except WaitTimedOut as slow:
        console.print(f"[red]{name}: still moving[/]: {escape(str(slow))}", highlight=False)
        raise typer.Exit(1) from slow
    if result.outcome == "no-changes":
        console.print(f"{name}: no changes")
    elif result.outcome == "dry-run":
        console.print(f"{name}: dry run, change set deleted; nothing changed")
    elif result.outcome == "deployed":
        console.print(f"[green]{name}: {result.stack_status}[/]", highlight=False)
    else:
        reason = f": {result.error}" if result.error else f" ({result.stack_status})"
        console.print(f"[red]{name}: deploy failed[/]{escape(reason)}", highlight=False)
        if result.failed_events:
            console.print(_failures_table(result.failed_events))
        raise typer.Exit(1)


@app.command()
def package(
    bucket: Annotated[
        str, typer.Option("--bucket", help="Artifact bucket: the bootstrap stack's ArtifactBucketName output.")
    ],
    template: RootTemplateOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Build and print the parameters; upload nothing.")] = False,
    endpoint_url: options.EndpointOption = None,
    region: options.RegionOption = None,
) -> None:
    """Build the Lambda zips, upload them and the nested templates under content-hashed keys, print the parameters.

    The parameters (TemplateBaseUrl, ArtifactBucket and the code keys) go to stdout as Key=Value lines,
    everything else to stderr, so each line can be handed to `stack deploy --parameter`.
    """
    parameters = _package(
        Console(stderr=True),
        root_template=_root_template(template),
        bucket=bucket,
        dry_run=dry_run,
        endpoint_url=endpoint_url,
        region=region,
    )
    for key, value in parameters.items():
        typer.echo(f"{key}={value}")


def _image_parameters(
    console: Console,
    cloudformation: Any,
    ecs_client: Any,
    *,
    stack_name: str,
    template: dict[str, Any],
    given: dict[str, str],
    image: str | None,
) -> dict[str, str]:
    """The image parameters to add to `given`, said out loud: the image given, or the one the service runs."""
    try:
        chosen = ecs.stack_image(
            cloudformation, ecs_client, stack_name=stack_name, template=template, given=given, image=image
        )
    except ValueError as problem:
        raise typer.BadParameter(str(problem), param_hint="--image") from problem
    except (ecs.ImageNotKept, ClientError, BotoCoreError) as refused:
        console.print(f"[red]cannot deploy {stack_name}[/]: {escape(str(refused))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from refused
    if chosen is None:
        return {}
    verb = "keeps the image its service runs" if chosen.source == "kept" else "runs the image"
    console.print(f"{stack_name} {verb}: {chosen.image}", highlight=False, soft_wrap=True)
    return chosen.parameters


def _root_template(template: Path | None) -> Path:
    try:
        path = template or stacks.find_template_dir() / stacks.ROOT_TEMPLATE
    except stacks.TemplatesNotFound as missing:
        raise typer.BadParameter(str(missing), param_hint="--template") from missing
    if not path.is_file():
        raise typer.BadParameter(f"no such file: {path}", param_hint="--template")
    return path


def _package(
    console: Console,
    *,
    root_template: Path,
    bucket: str,
    dry_run: bool,
    endpoint_url: str | None,
    region: str | None,
) -> dict[str, str]:
    """Package into `bucket`, reporting each artifact; the root stack parameters that point at the release."""

    def report(artifact: packaging.Artifact, put: bool) -> None:
        if not put:
            console.print(f"[dim]present[/] {artifact.key}", highlight=False)
        else:
            verb = "would upload" if dry_run else "[green]uploaded[/]"
            console.print(f"{verb} {artifact.key} ({len(artifact.body):,} bytes)", highlight=False)

    try:
        release, uploaded = packaging.package_release(
            aws.client("s3", endpoint_url, region),
            root_template=root_template,
            bucket=bucket,
            dry_run=dry_run,
            on_artifact=report,
        )
    except packaging.PackagingError as problem:
        console.print(f"[red]cannot package[/]: {escape(str(problem))}", highlight=False)
        raise typer.Exit(1) from problem
    except (ClientError, BotoCoreError) as refused:
        console.print(f"[red]cannot upload to {bucket}[/]: {escape(str(refused))}", highlight=False)
        raise typer.Exit(1) from refused
    verb = "would upload" if dry_run else "uploaded"
    console.print(f"{bucket}: {verb} {len(uploaded.put)}, {len(uploaded.present)} already there", highlight=False)
    return release.parameters


def _changes_table(stack_name: str, changes: list[changesets.ResourceChange]) -> Table:
    table = Table(title=f"Changes to {stack_name}", title_justify="left")
    for column in ("action", "logical id", "type", "replacement"):
        table.add_column(column, no_wrap=True)
    styles = {"Add": "green", "Remove": "red", "Modify": "yellow"}
    for change in changes:
        replacement = "[bold red]True[/]" if change.replacement == "True" else change.replacement
        table.add_row(
            change.action, change.logical_id, change.resource_type, replacement, style=styles.get(change.action)
        )
    return table


def _failures_table(events: list[changesets.StackEvent]) -> Table:
    table = Table(title="Failed", title_justify="left")
    for column in ("stack", "logical id", "type", "status", "reason"):
        table.add_column(column)
    for event in events:
        table.add_row(event.stack_name, event.logical_id, event.resource_type, event.status, escape(event.reason))
    return table


def _table(section: str, environments: tuple[str, ...], rows: list[stacks.Row]) -> Table:
    table = Table(title=section, title_justify="left")
    table.add_column("", no_wrap=True)
    table.add_column("name", no_wrap=True)
    for environment in environments:
        table.add_column(environment, no_wrap=True)
    for row in rows:
        marker = "[bold yellow]≠[/]" if row.differs else ""
        style = "bold" if row.differs else None
        table.add_row(marker, row.name, *(_cell(row.values[env]) for env in environments), style=style)
    return table


def _cell(value: Any) -> str:
    if isinstance(value, Unresolved):
        return f"[dim]{value}[/]"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
