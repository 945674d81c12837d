"""The templates as each environment sees them: the parameters the root stack hands a nested stack,
the resources its Conditions keep, and their properties with everything a parameter decides resolved."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

from skycart_deploy import stacks
from skycart_deploy.cfn import Scope, Unresolved, evaluate, load_template, scope_for

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "infra" / "cloudformation"
ROOT = stacks.ROOT_TEMPLATE
ENVIRONMENTS = stacks.ENVIRONMENTS

# What a pipeline passes at deploy time besides Environment (values are stand-ins, never secrets).
DEPLOY_PARAMETERS: dict[str, Any] = {
    "TemplateBaseUrl": "https://artifacts.example/templates/0123abcd",
    "ImageRepositoryName": "skycart/test",
    "ImageTag": "0123abcd",
    "ArtifactBucket": "artifacts",
    "ApiDeployerCodeKey": "lambda/api_deployer-0123abcd.zip",
    "SecretRotationCodeKey": "lambda/db_secret_rotation-0123abcd.zip",
    "CertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/test",
    "BackendHostName": "api.internal.example",
    "OnCallUrl": "https://paging.example/hook",
}
BOOTSTRAP = "bootstrap.yaml"
BOOTSTRAP_PARAMETERS: dict[str, Any] = {
    "GitLabUrl": "https://gitlab.example.com",
    "GitLabHost": "gitlab.example.com",
    "GitLabProjectPath": "airline-platform/skycart",
    "ManageAccountSingletons": "true",
}


@functools.cache
def _loaded(file_name: str) -> dict[str, Any]:
    return load_template(TEMPLATE_DIR / file_name)


def template(file_name: str) -> dict[str, Any]:
    """A fresh copy of the template, short-form tags in long form."""
    return copy.deepcopy(_loaded(file_name))


def template_files() -> list[str]:
    return sorted(path.name for path in TEMPLATE_DIR.glob("*.yaml"))


def nested_files() -> dict[str, str]:
    """Logical id in the root template -> file name."""
    return stacks.nested_stacks(_loaded(ROOT))


@functools.cache
def _handed(environment: str) -> dict[str, dict[str, Any]]:
    return stacks.nested_stack_parameters(environment, TEMPLATE_DIR, parameters=DEPLOY_PARAMETERS)


def parameters(environment: str, file_name: str) -> dict[str, Any]:
    """What `file_name`'s stack receives in `environment` (the root: the deploy parameters)."""
    if file_name == ROOT:
        return {**DEPLOY_PARAMETERS, "Environment": environment}
    if file_name == BOOTSTRAP:
        return {**BOOTSTRAP_PARAMETERS, "Environment": environment}
    logical_id = {file: logical for logical, file in nested_files().items()}[file_name]
    return dict(_handed(environment)[logical_id])


def scope(environment: str, file_name: str) -> Scope:
    return scope_for(_loaded(file_name), parameters(environment, file_name))


def config(environment: str) -> dict[str, Any]:
    return stacks.environment_config(environment, TEMPLATE_DIR)


def resources(
    environment: str, file_name: str, resource_type: str | None = None, *, given: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """The resources that exist in `environment` (their Condition holds), with properties resolved.

    `given` replaces the parameters the stack would get (e.g. what a test actually deployed with).
    """
    decided = scope_for(_loaded(file_name), given) if given is not None else scope(environment, file_name)
    kept = {}
    for logical_id, resource in _loaded(file_name)["Resources"].items():
        if resource_type and resource["Type"] != resource_type:
            continue
        if "Condition" in resource:
            holds = decided.condition(resource["Condition"])
            assert not isinstance(holds, Unresolved), f"{file_name}:{logical_id} condition {holds}"
            if not holds:
                continue
        resolved = dict(resource)
        resolved["Properties"] = evaluate(resource.get("Properties", {}), decided)
        kept[logical_id] = resolved
    return kept


def properties(environment: str, file_name: str, logical_id: str) -> dict[str, Any]:
    return resources(environment, file_name)[logical_id]["Properties"]


def all_resources() -> list[tuple[str, str, dict[str, Any]]]:
    """(file name, logical id, raw resource) for every resource of every template."""
    return [
        (file_name, logical_id, resource)
        for file_name in template_files()
        for logical_id, resource in _loaded(file_name)["Resources"].items()
    ]


def strings(node: Any) -> list[str]:
    """Every string anywhere in `node`, keys included."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [text for key, value in node.items() for text in (key, *strings(value))]
    if isinstance(node, list):
        return [text for item in node for text in strings(item)]
    return []
