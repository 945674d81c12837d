"""Reading CloudFormation templates and evaluating the intrinsic functions that only need parameters.

The loader turns the short-form tags (`!Ref`, `!Sub`, `!If`, ...) into their long form, so a template
reads as the plain data CloudFormation sees. `evaluate` resolves what a stack's parameters, mappings
and conditions decide; anything that needs a resource that does not exist yet comes back as
`Unresolved`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

FUNCTION_TAGS = (
    "And",
    "Base64",
    "Cidr",
    "Equals",
    "FindInMap",
    "GetAZs",
    "If",
    "ImportValue",
    "Join",
    "Not",
    "Or",
    "Select",
    "Split",
    "Sub",
    "Transform",
)


class TemplateLoader(yaml.SafeLoader):
    """PyYAML's safe loader plus CloudFormation's short-form tags."""


def _node_value(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if not isinstance(node, yaml.MappingNode):
        raise ConstructorError(None, None, f"expected a mapping node, but found {type(node).__name__}", node.start_mark)
    return loader.construct_mapping(node, deep=True)


def _long_form(key: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        return {key: _node_value(loader, node)}

    return construct


def _construct_get_att(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    value = _node_value(loader, node)
    if isinstance(value, str):
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {"Fn::GetAtt": value}


TemplateLoader.add_constructor("!Ref", _long_form("Ref"))
TemplateLoader.add_constructor("!Condition", _long_form("Condition"))
TemplateLoader.add_constructor("!GetAtt", _construct_get_att)
for _name in FUNCTION_TAGS:
    TemplateLoader.add_constructor(f"!{_name}", _long_form(f"Fn::{_name}"))


def load_template(path: Path) -> dict[str, Any]:
    """A template file as plain data, short-form tags in their long form."""
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=TemplateLoader)


@dataclass(frozen=True)
class Unresolved:
    """A value that only exists once something is deployed (a resource attribute, an AZ name, ...)."""

    what: str

    def __str__(self) -> str:
        return f"<{self.what}>"


NO_VALUE = object()


@dataclass
class Scope:
    """What one stack's intrinsic functions can see."""

    parameters: Mapping[str, Any]
    mappings: Mapping[str, Any] = field(default_factory=dict)
    conditions: Mapping[str, Any] = field(default_factory=dict)
    attributes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    pseudo: Mapping[str, Any] = field(default_factory=dict)
    _decided: dict[str, Any] = field(default_factory=dict)

    def condition(self, name: str) -> bool | Unresolved:
        if name not in self._decided:
            self._decided[name] = _truth(evaluate(self.conditions[name], self))
        return self._decided[name]


def scope_for(template: Mapping[str, Any], parameters: Mapping[str, Any], **kwargs: Any) -> Scope:
    """A scope from a template's own defaults, mappings and conditions, and the given parameters."""
    values: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in parameters:
            values[name] = parameters[name]
        elif "Default" in spec:
            values[name] = spec["Default"]
        else:
            values[name] = Unresolved(f"parameter {name}")
    return Scope(
        parameters=values,
        mappings=template.get("Mappings", {}),
        conditions=template.get("Conditions", {}),
        **kwargs,
    )


def _truth(value: Any) -> bool | Unresolved:
    if isinstance(value, Unresolved | bool):
        return value
    return str(value).lower() == "true"


def _first_unresolved(*values: Any) -> Unresolved | None:
    for value in values:
        if isinstance(value, Unresolved):
            return value
        if isinstance(value, list):
            found = _first_unresolved(*value)
            if found:
                return found
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _ref(name: str, scope: Scope) -> Any:
    if name == "AWS::NoValue":
        return NO_VALUE
    if name in scope.parameters:
        return scope.parameters[name]
    if name in scope.pseudo:
        return scope.pseudo[name]
    return Unresolved(f"Ref {name}")


def _get_att(args: list[Any], scope: Scope) -> Any:
    resource, attribute = args[0], args[1]
    known = scope.attributes.get(resource, {})
    return known.get(attribute, Unresolved(f"{resource}.{attribute}"))


_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


def _sub(args: Any, scope: Scope) -> Any:
    text, variables = (args, {}) if isinstance(args, str) else (args[0], evaluate(args[1], scope))
    missing: list[Unresolved] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables:
            value = variables[name]
        elif "." in name and not name.startswith("AWS::"):
            resource, _, attribute = name.partition(".")
            value = _get_att([resource, attribute], scope)
        else:
            value = _ref(name, scope)
        if isinstance(value, Unresolved):
            missing.append(value)
            return match.group(0)
        return _text(value)

    result = _SUB_VARIABLE.sub(replace, text)
    return missing[0] if missing else result


def _find_in_map(args: list[Any], scope: Scope) -> Any:
    name, top, second = (evaluate(arg, scope) for arg in args[:3])
    unresolved = _first_unresolved(name, top, second)
    return unresolved or scope.mappings[name][top][second]


def _if(args: list[Any], scope: Scope) -> Any:
    decided = scope.condition(args[0])
    if isinstance(decided, Unresolved):
        return decided
    return evaluate(args[1] if decided else args[2], scope)


def _equals(args: list[Any], scope: Scope) -> Any:
    left, right = (evaluate(arg, scope) for arg in args)
    return _first_unresolved(left, right) or _text(left) == _text(right)


def _logical(combine: Callable[[list[bool]], bool]) -> Callable[[list[Any], Scope], Any]:
    def apply(args: list[Any], scope: Scope) -> Any:
        values = [_truth(evaluate(arg, scope)) for arg in args]
        return _first_unresolved(*values) or combine(values)  # type: ignore[arg-type]

    return apply


def _join(args: list[Any], scope: Scope) -> Any:
    delimiter, items = args[0], evaluate(args[1], scope)
    return _first_unresolved(items) or delimiter.join(_text(item) for item in items)


def _select(args: list[Any], scope: Scope) -> Any:
    index, items = evaluate(args[0], scope), evaluate(args[1], scope)
    return _first_unresolved(index, items) or items[int(index)]


def _split(args: list[Any], scope: Scope) -> Any:
    value = evaluate(args[1], scope)
    return _first_unresolved(value) or value.split(args[0])


def _cidr(args: list[Any], scope: Scope) -> Any:
    block, count, host_bits = (evaluate(arg, scope) for arg in args)
    unresolved = _first_unresolved(block, count, host_bits)
    if unresolved:
        return unresolved
    network = ipaddress.ip_network(block)
    subnets = network.subnets(new_prefix=network.max_prefixlen - int(host_bits))
    return [str(subnet) for subnet, _ in zip(subnets, range(int(count)), strict=False)]


FUNCTIONS: dict[str, Callable[[Any, Scope], Any]] = {
    "Ref": _ref,
    "Condition": lambda name, scope: scope.condition(name),
    "Fn::GetAtt": _get_att,
    "Fn::Sub": _sub,
    "Fn::FindInMap": _find_in_map,
    "Fn::If": _if,
    "Fn::Equals": _equals,
    "Fn::Not": lambda args, scope: _logical(lambda values: not values[0])(args, scope),
    "Fn::And": _logical(all),
    "Fn::Or": _logical(any),
    "Fn::Join": _join,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::Cidr": _cidr,
}


def evaluate(node: Any, scope: Scope) -> Any:
    """`node` with every intrinsic function the scope can decide replaced by its value."""
    if isinstance(node, dict):
        if len(node) == 1:
            ((key, args),) = node.items()
            if key in FUNCTIONS:
                return FUNCTIONS[key](args, scope)
            if key.startswith("Fn::"):
                return Unresolved(key)
        return {
            key: value for key, value in ((k, evaluate(v, scope)) for k, v in node.items()) if value is not NO_VALUE
        }
    if isinstance(node, list):
        return [value for value in (evaluate(item, scope) for item in node) if value is not NO_VALUE]
    return node
