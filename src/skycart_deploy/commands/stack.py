"""`skycart-deploy stack ...`: the CloudFormation template set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from skycart_deploy import stacks
from skycart_deploy.cfn import Unresolved

app = typer.Typer(help="The CloudFormation templates in infra/cloudformation.", no_args_is_help=True)

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
