"""The CloudFormation template set: what each environment resolves to, and linting it.

One root template (`skycart.yaml`) holds the per-environment table and passes values to its nested
stacks; these functions read the same templates CloudFormation deploys, so what they print is what
the environment gets.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from skycart_deploy.cfn import Scope, Unresolved, evaluate, load_template, scope_for

ENVIRONMENTS = ("dev", "stage", "qa", "prod")
ROOT_TEMPLATE = "skycart.yaml"
ENVIRONMENT_MAPPING = "EnvironmentConfig"
TEMPLATE_DIR = Path("infra") / "cloudformation"
CHECKOV = Path(".venv-tools") / "bin" / "checkov"


class TemplatesNotFound(RuntimeError):
    """No infra/cloudformation folder where we looked."""


class LintToolMissing(RuntimeError):
    """cfn-lint or checkov is not installed where the project installs it."""


def find_template_dir(start: Path | None = None) -> Path:
    """infra/cloudformation in `start` (default: the working directory) or the nearest parent that has one."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / TEMPLATE_DIR / ROOT_TEMPLATE).is_file():
            return folder / TEMPLATE_DIR
    raise TemplatesNotFound(f"no {TEMPLATE_DIR}/{ROOT_TEMPLATE} in {here} or above")


def load_templates(template_dir: Path) -> dict[str, dict[str, Any]]:
    """Every template in the folder, by file name."""
    return {path.name: load_template(path) for path in sorted(template_dir.glob("*.yaml"))}


def environment_config(environment: str, template_dir: Path) -> dict[str, Any]:
    """The root template's EnvironmentConfig row for one environment."""
    _check_environment(environment)
    root = load_template(template_dir / ROOT_TEMPLATE)
    return dict(root["Mappings"][ENVIRONMENT_MAPPING][environment])


def nested_stacks(root: Mapping[str, Any]) -> dict[str, str]:
    """Logical id of each nested stack in the root template -> its template's file name."""
    found = {}
    for logical_id, resource in root["Resources"].items():
        if resource["Type"] == "AWS::CloudFormation::Stack":
            url = evaluate(resource["Properties"]["TemplateURL"], Scope(parameters={"TemplateBaseUrl": ""}))
            found[logical_id] = PurePosixPath(str(url)).name
    return found


def root_scope(
    environment: str,
    root: Mapping[str, Any],
    *,
    parameters: Mapping[str, Any] | None = None,
    attributes: Mapping[str, Mapping[str, Any]] | None = None,
) -> Scope:
    """What the root stack's intrinsic functions see for `environment`."""
    _check_environment(environment)
    return scope_for(root, {**(parameters or {}), "Environment": environment}, attributes=attributes or {})


def nested_stack_parameters(
    environment: str,
    template_dir: Path,
    *,
    parameters: Mapping[str, Any] | None = None,
    attributes: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """The parameters the root stack hands each nested stack in `environment`.

    `attributes` supplies what only exists after deployment, e.g. {"Network": {"Outputs.VpcId": ...}};
    whatever is still missing is an `Unresolved`.
    """
    root = load_template(template_dir / ROOT_TEMPLATE)
    scope = root_scope(environment, root, parameters=parameters, attributes=attributes)
    return {
        logical_id: {
            name: _as_parameter(value)
            for name, value in evaluate(root["Resources"][logical_id]["Properties"]["Parameters"], scope).items()
        }
        for logical_id in nested_stacks(root)
    }


def stack_conditions(
    environment: str, template_dir: Path, *, parameters: Mapping[str, Any] | None = None
) -> dict[str, dict[str, bool | Unresolved]]:
    """Every Condition of the root and nested templates, decided for `environment` (file name -> name -> value)."""
    root = load_template(template_dir / ROOT_TEMPLATE)
    scope = root_scope(environment, root, parameters=parameters)
    decided = {ROOT_TEMPLATE: {name: scope.condition(name) for name in root.get("Conditions", {})}}
    handed = nested_stack_parameters(environment, template_dir, parameters=parameters)
    for logical_id, file_name in nested_stacks(root).items():
        child = load_template(template_dir / file_name)
        child_scope = scope_for(child, handed[logical_id])
        decided[file_name] = {name: child_scope.condition(name) for name in child.get("Conditions", {})}
    return decided


@dataclass(frozen=True)
class Row:
    """One resolved value across environments."""

    section: str
    name: str
    values: dict[str, Any]

    @property
    def differs(self) -> bool:
        return len({str(value) for value in self.values.values()}) > 1


def render(environments: Sequence[str] = ENVIRONMENTS, template_dir: Path | None = None) -> list[Row]:
    """What each environment resolves to: its EnvironmentConfig row, then every template's Conditions."""
    for environment in environments:
        _check_environment(environment)
    folder = template_dir or find_template_dir()
    if not (folder / ROOT_TEMPLATE).is_file():
        raise TemplatesNotFound(f"no {ROOT_TEMPLATE} in {folder}")
    configs = {env: environment_config(env, folder) for env in environments}
    rows = [
        Row(ENVIRONMENT_MAPPING, key, {env: configs[env][key] for env in environments})
        for key in configs[environments[0]]
    ]
    # Deploy-time parameters (image tag, on-call URL, ...) are not the environment's to decide.
    root = load_template(folder / ROOT_TEMPLATE)
    deploy_time = {name: Unresolved(f"parameter {name}") for name in root["Parameters"] if name != "Environment"}
    conditions = {env: stack_conditions(env, folder, parameters=deploy_time) for env in environments}
    first = conditions[environments[0]]
    for file_name, names in first.items():
        for name in names:
            values = {env: conditions[env][file_name][name] for env in environments}
            rows.append(Row("Conditions", f"{PurePosixPath(file_name).stem}.{name}", values))
    return rows


@dataclass(frozen=True)
class Finding:
    """One complaint of cfn-lint or checkov."""

    tool: str
    rule: str
    message: str
    location: str


@dataclass
class LintReport:
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


def lint(
    template_dir: Path | None = None, *, checkov: Path | None = None, regions: Iterable[str] = ("us-east-1",)
) -> LintReport:
    """cfn-lint (errors and warnings) on every template, then checkov on the folder."""
    folder = template_dir or find_template_dir()
    if not any(folder.glob("*.yaml")):
        raise TemplatesNotFound(f"no templates (*.yaml) in {folder}")
    report = LintReport()
    report.findings += cfn_lint_findings(folder, regions=regions)
    report.checked.append("cfn-lint")
    report.findings += checkov_findings(folder, checkov=checkov)
    report.checked.append("checkov")
    return report


def cfn_lint_findings(template_dir: Path, *, regions: Iterable[str] = ("us-east-1",)) -> list[Finding]:
    """cfn-lint's errors and warnings for every template in the folder."""
    try:
        from cfnlint.api import ManualArgs, lint_file
    except ImportError as missing:
        raise LintToolMissing("cfn-lint is not installed: pip install -e '.[dev]'") from missing
    findings = []
    for path in sorted(template_dir.glob("*.yaml")):
        for match in lint_file(path, ManualArgs(regions=list(regions))):
            findings.append(Finding("cfn-lint", match.rule.id, match.message, f"{path.name}:{match.linenumber}"))
    return findings


def checkov_findings(template_dir: Path, *, checkov: Path | None = None) -> list[Finding]:
    """checkov's failed checks for the folder (offline: --skip-download)."""
    executable = (checkov or _default_checkov(template_dir)).resolve()
    # Relative paths: checkov feeds its own file-path metadata to secret detectors (CKV_AWS_45), so an
    # absolute path would make the result depend on where the repository is checked out.
    command = [
        str(executable),
        "--directory",
        ".",
        "--framework",
        "cloudformation",
        "--skip-download",
        "--quiet",
        "--compact",
        "--output",
        "json",
    ]
    finished = subprocess.run(command, cwd=template_dir, capture_output=True, text=True, check=False, timeout=600)
    if finished.returncode not in (0, 1):
        raise RuntimeError(f"checkov failed ({finished.returncode}): {finished.stderr.strip()[-2000:]}")
    parsed = json.loads(finished.stdout) if finished.stdout.strip() else []
    findings = []
    for report in parsed if isinstance(parsed, list) else [parsed]:
        for check in report.get("results", {}).get("failed_checks", []):
            location = f"{check['file_path'].lstrip('./')}:{check['resource']}"
            findings.append(Finding("checkov", check["check_id"], check["check_name"], location))
        if report.get("summary", {}).get("parsing_errors"):
            findings.append(Finding("checkov", "parsing", "checkov could not parse a template", str(template_dir)))
    return findings


def _default_checkov(template_dir: Path) -> Path:
    for folder in (template_dir.resolve(), *template_dir.resolve().parents):
        if (folder / CHECKOV).is_file():
            return folder / CHECKOV
    on_path = shutil.which("checkov")
    if on_path:
        return Path(on_path)
    raise LintToolMissing(f"checkov is not installed: make {CHECKOV.parent.parent}/.installed-checkov")


def _as_parameter(value: Any) -> Any:
    if isinstance(value, Unresolved):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def _check_environment(environment: str) -> None:
    if environment not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {environment!r}: one of {', '.join(ENVIRONMENTS)}")
