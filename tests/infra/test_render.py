"""`skycart-deploy stack render`: what each environment resolves to, side by side."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from skycart_deploy import stacks
from skycart_deploy.cli import app
from tests.infra.templates import TEMPLATE_DIR, config

WIDE = {"COLUMNS": "200", "NO_COLOR": "1"}


def row(output: str, name: str) -> list[str]:
    """The cells of the table row called `name` (marker column first)."""
    for line in output.splitlines():
        cells = [cell.strip() for cell in re.split("[│┃]", line)[1:-1]]
        if len(cells) > 1 and cells[1] == name:
            return cells
    raise AssertionError(f"no row {name!r} in:\n{output}")


def test_render_shows_every_environment_side_by_side_and_marks_what_differs() -> None:
    result = CliRunner(env=WIDE).invoke(app, ["stack", "render"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert re.search(r"name\s+┃\s+dev\s+┃\s+stage\s+┃\s+qa\s+┃\s+prod", result.output)
    assert row(result.output, "MinTasks") == ["≠", "MinTasks", "1", "2", "1", "3"]
    assert row(result.output, "LogRetentionDays")[2:] == [
        str(config(e)["LogRetentionDays"]) for e in stacks.ENVIRONMENTS
    ]
    assert row(result.output, "skycart.IsProd") == ["≠", "skycart.IsProd", "no", "no", "no", "yes"]
    assert row(result.output, "data.HasTwoReaders")[2:] == ["no", "no", "no", "yes"]


def test_render_marks_only_rows_that_differ() -> None:
    result = CliRunner(env=WIDE).invoke(app, ["stack", "render", "--all"], catch_exceptions=False)

    assert row(result.output, "MinTasks")[0] == "≠"
    assert row(result.output, "skycart.HasAlarmEmail")[0] == ""


def test_render_differences_leaves_out_what_all_environments_share() -> None:
    result = CliRunner(env=WIDE).invoke(app, ["stack", "render", "--differences"], catch_exceptions=False)

    assert row(result.output, "TaskCpu")[2:] == ["256", "512", "512", "1024"]
    assert "skycart.HasAlarmEmail" not in result.output


def test_render_one_environment_and_deploy_time_conditions() -> None:
    result = CliRunner(env=WIDE).invoke(app, ["stack", "render", "--env", "prod"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert row(result.output, "DbInstanceClass")[1:] == ["DbInstanceClass", "db.r6g.xlarge"]
    assert row(result.output, "monitoring.PagesOnCall")[2] == "<parameter OnCallUrl>"
    assert "dev" not in row(result.output, "name")


def test_render_refuses_an_unknown_environment() -> None:
    result = CliRunner(env=WIDE).invoke(app, ["stack", "render", "--env", "preprod"])

    assert result.exit_code == 2
    assert "unknown environment 'preprod'" in result.output


def test_render_says_where_it_looked_for_templates(tmp_path: Path) -> None:
    result = CliRunner(env=WIDE).invoke(app, ["stack", "render", "--templates", str(tmp_path)])

    assert result.exit_code == 2
    assert "skycart.yaml" in result.output


def test_render_as_a_function_returns_rows_per_environment() -> None:
    rows = {r.name: r for r in stacks.render(("dev", "prod"), TEMPLATE_DIR)}

    assert rows["AzCount"].values == {"dev": "2", "prod": "3"} and rows["AzCount"].differs
    assert rows["network.HasThirdAz"].values == {"dev": False, "prod": True}


def test_the_console_script_finds_the_templates_from_the_repository(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("skycart-deploy")

    finished = subprocess.run(
        [str(script), "stack", "render", "--env", "dev"],
        cwd=TEMPLATE_DIR.parents[1] / "src",
        env={"COLUMNS": "200", "NO_COLOR": "1", "PATH": str(script.parent)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 0, finished.stderr
    assert row(finished.stdout, "TaskMemory")[2] == "512"
