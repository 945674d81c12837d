"""Model names API Gateway accepts: every component schema becomes a model, named alphanumerically.

`to_openapi30` calls `name_models` last, on a document already in OpenAPI 3.0 form.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SCHEMA_REF_PREFIX = "#/components/schemas/"
_NOT_ALPHANUMERIC = re.compile(r"[^A-Za-z0-9]")


def name_models(doc: dict[str, Any]) -> None:
    """Rename component schemas to alphanumeric names (rewriting every reference), then give each
    inline response schema a model of its own."""
    _name_models(doc)
    _name_response_models(doc)


def _name_models(doc: dict[str, Any]) -> None:
    """API Gateway turns every component schema into a model, and a model's name must be alphanumeric."""
    schemas = (doc.get("components") or {}).get("schemas") or {}
    renamed = {name: name for name in schemas if not _NOT_ALPHANUMERIC.search(name)}
    for name in [name for name in schemas if name not in renamed]:
        renamed[name] = _free_name(_NOT_ALPHANUMERIC.sub("", name) or "Model", set(renamed.values()))
    if all(old == new for old, new in renamed.items()):
        return
    doc["components"]["schemas"] = {renamed[name]: schema for name, schema in schemas.items()}
    refs = {SCHEMA_REF_PREFIX + escape_pointer(old): SCHEMA_REF_PREFIX + new for old, new in renamed.items()}
    _rewrite_refs(doc, refs)


def _name_response_models(doc: dict[str, Any]) -> None:
    """A method response's schema must be a model, not an inline primitive: name each inline one."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for path, item in (doc.get("paths") or {}).items():
        for method in METHODS:
            operation = item.get(method) if isinstance(item, dict) else None
            if not operation:
                continue
            for status, response in (operation.get("responses") or {}).items():
                for media in (response.get("content") or {}).values():
                    schema = media.get("schema")
                    if not schema or "$ref" in schema:
                        continue
                    hint = schema.get("title") or f"{operation.get('operationId') or method + path} {status} response"
                    name = _free_name(_camel(hint), set(schemas))
                    schemas[name] = schema
                    media["schema"] = {"$ref": SCHEMA_REF_PREFIX + name}


def _camel(text: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", text)
    return "".join(word[:1].upper() + word[1:] for word in words) or "Model"


def _free_name(base: str, taken: set[str]) -> str:
    name, number = base, 2
    while name in taken:
        name, number = f"{base}{number}", number + 1
    return name


def _rewrite_refs(node: Any, refs: Mapping[str, str]) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            node["$ref"] = refs.get(node["$ref"], node["$ref"])
        mapping = node.get("mapping") if isinstance(node.get("propertyName"), str) else None
        if isinstance(mapping, dict):  # a discriminator's mapping names schemas by reference too
            node["mapping"] = {key: refs.get(value, value) for key, value in mapping.items()}
        for value in node.values():
            _rewrite_refs(value, refs)
    elif isinstance(node, list):
        for value in node:
            _rewrite_refs(value, refs)


def escape_pointer(token: str) -> str:
    """One JSON pointer token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")
