"""The app's OpenAPI document in the form API Gateway imports: OpenAPI 3.0.3 with models it accepts.

FastAPI emits OpenAPI 3.1 (JSON Schema 2020-12); API Gateway imports OpenAPI 2.0 and 3.0 only.
`to_openapi30` lowers every 3.1 construct the app uses to its 3.0 form and raises `UnconvertibleSpec`,
naming the place, for anything else. Two lowerings widen what a schema admits, on purpose: the key
pattern of `patternProperties` and `propertyNames` go (the map's values keep their schema), because
3.0 cannot say it and the app validates keys itself. Model names are `model_names`' job.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import Any

from skycart_deploy.model_names import METHODS, escape_pointer, name_models

OPENAPI_VERSION = "3.0.3"

# The OpenAPI 3.0 Schema Object's fields; anything else left after lowering has no 3.0 form.
SCHEMA_KEYS_30 = frozenset(
    {
        "title", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength",
        "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "maxProperties", "minProperties",
        "required", "enum", "type", "allOf", "oneOf", "anyOf", "not", "items", "properties",
        "additionalProperties", "description", "format", "default", "nullable", "discriminator", "readOnly",
        "writeOnly", "xml", "externalDocs", "example", "deprecated", "$ref",
    }
)  # fmt: skip
# Annotations, and propertyNames (see above): dropped without a trace.
DROPPED_SCHEMA_KEYS = ("$schema", "$id", "$comment", "contentSchema", "propertyNames")
ANNOTATIONS = frozenset({"title", "description", "default", "example", "deprecated", "readOnly", "writeOnly"})


class UnconvertibleSpec(ValueError):
    """The document uses something OpenAPI 3.0 cannot express; the message names where (a JSON pointer)."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where or '/'}: {problem}")
        self.where = where


def app_document() -> dict[str, Any]:
    """The app's own OpenAPI document, as `skycart openapi` prints it."""
    # Imported here: the deployer Lambda ships this module without the app.
    from skycart.app import create_app
    from skycart.config import get_settings

    return create_app(get_settings()).openapi()


def to_openapi30(document: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAPI 3.0.3 that API Gateway imports, from a 3.0 or 3.1 document; raises UnconvertibleSpec."""
    doc = copy.deepcopy(dict(document))
    version = str(doc.get("openapi", ""))
    if not version.startswith(("3.0.", "3.1.")):
        raise UnconvertibleSpec("/openapi", f"expected an OpenAPI 3.0 or 3.1 document, got {version!r}")
    doc["openapi"] = OPENAPI_VERSION
    doc.pop("jsonSchemaDialect", None)
    if doc.pop("webhooks", None):
        raise UnconvertibleSpec("/webhooks", "webhooks have no OpenAPI 3.0 form")
    _info(doc.get("info"))
    for path, item in (doc.get("paths") or {}).items():
        _path_item(item, _at("/paths", path))
    _components(doc.get("components") or {})
    name_models(doc)
    return doc


def _info(info: Any) -> None:
    if not isinstance(info, dict) or not info.get("title") or not info.get("version"):
        raise UnconvertibleSpec("/info", "title and version are required")
    if not str(info.get("description", "")).strip():
        raise UnconvertibleSpec("/info/description", "missing; API Gateway imports it as the API's description")
    info.pop("summary", None)
    licence = info.get("license")
    if isinstance(licence, dict) and "identifier" in licence:
        identifier = licence.pop("identifier")
        licence.setdefault("url", f"https://spdx.org/licenses/{identifier}.html")


def _components(components: dict[str, Any]) -> None:
    if components.pop("pathItems", None):
        raise UnconvertibleSpec("/components/pathItems", "reusable path items have no OpenAPI 3.0 form")
    for name, schema in (components.get("schemas") or {}).items():
        components["schemas"][name] = _schema(schema, _at("/components/schemas", name))
    walkers = {"parameters": _parameter, "headers": _parameter, "requestBodies": _with_content}
    walkers |= {"responses": _response, "callbacks": _callback}
    for kind, walk in walkers.items():
        for name, component in (components.get(kind) or {}).items():
            walk(component, _at(f"/components/{kind}", name))


def _callback(callback: dict[str, Any], where: str) -> None:
    if "$ref" not in _unref(callback):
        for expression, item in callback.items():
            _path_item(item, _at(where, expression))


def _path_item(item: dict[str, Any], where: str) -> None:
    for index, parameter in enumerate(item.get("parameters") or []):
        _parameter(parameter, f"{where}/parameters/{index}")
    for method in METHODS:
        if isinstance(item.get(method), dict):
            _operation(item[method], f"{where}/{method}")


def _operation(operation: dict[str, Any], where: str) -> None:
    for index, parameter in enumerate(operation.get("parameters") or []):
        _parameter(parameter, f"{where}/parameters/{index}")
    if "requestBody" in operation:
        _with_content(operation["requestBody"], f"{where}/requestBody")
    # 3.1 made `responses` optional; 3.0 requires at least one.
    responses = operation.setdefault("responses", {"default": {"description": "Response"}})
    for status, response in responses.items():
        _response(response, _at(f"{where}/responses", str(status)))
    for name, callback in (operation.get("callbacks") or {}).items():
        _callback(callback, _at(f"{where}/callbacks", name))


def _parameter(parameter: dict[str, Any], where: str) -> None:
    if "$ref" in _unref(parameter):
        return
    if "schema" in parameter:
        parameter["schema"] = _schema(parameter["schema"], f"{where}/schema")
    _with_content(parameter, where)


def _response(response: dict[str, Any], where: str) -> None:
    if "$ref" in _unref(response):
        return
    for name, header in (response.get("headers") or {}).items():
        _parameter(header, _at(f"{where}/headers", name))
    _with_content(response, where)


def _with_content(holder: dict[str, Any], where: str) -> None:
    if "$ref" in _unref(holder):
        return
    for media_type, media in (holder.get("content") or {}).items():
        at = _at(f"{where}/content", media_type)
        if "schema" in media:
            media["schema"] = _schema(media["schema"], f"{at}/schema")
        for field, encoding in (media.get("encoding") or {}).items():
            for name, header in (encoding.get("headers") or {}).items():
                _parameter(header, _at(_at(f"{at}/encoding", field) + "/headers", name))


def _unref(obj: dict[str, Any]) -> dict[str, Any]:
    """A 3.0 Reference Object is `$ref` alone; 3.1 lets `summary` and `description` sit beside it."""
    if "$ref" in obj:
        for key in [key for key in obj if key != "$ref"]:
            del obj[key]
    return obj


def _schema(node: Any, where: str) -> dict[str, Any]:
    """One JSON Schema 2020-12 schema, and everything under it, as an OpenAPI 3.0 Schema Object."""
    if node is True:
        return {}
    if node is False:
        return {"not": {}}
    if not isinstance(node, dict):
        raise UnconvertibleSpec(where, "a schema must be an object or a boolean")
    schema = {key: value for key, value in node.items() if key not in DROPPED_SCHEMA_KEYS}
    # Null branches go before the children are converted: a lone `type: null` has no 3.0 form.
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and any(_is_null(branch) for branch in schema[key]):
            schema[key] = [branch for branch in schema[key] if not _is_null(branch)]
            schema["nullable"] = True
            if not schema[key]:
                raise UnconvertibleSpec(f"{where}/{key}", "only null: no OpenAPI 3.0 form")
    for key in ("allOf", "anyOf", "oneOf", "prefixItems"):
        if key in schema:
            if not isinstance(schema[key], list):
                raise UnconvertibleSpec(f"{where}/{key}", "must be a list of schemas")
            schema[key] = [_schema(branch, f"{where}/{key}/{index}") for index, branch in enumerate(schema[key])]
    for key in ("not", "items"):
        if key in schema:
            schema[key] = _schema(schema[key], f"{where}/{key}")
    if isinstance(schema.get("additionalProperties"), dict):
        schema["additionalProperties"] = _schema(schema["additionalProperties"], f"{where}/additionalProperties")
    for key in ("properties", "patternProperties"):
        if key in schema:
            schema[key] = {name: _schema(sub, _at(f"{where}/{key}", name)) for name, sub in schema[key].items()}
    for lower in _LOWERINGS:
        schema = lower(schema, where)
    unknown = sorted(key for key in schema if key not in SCHEMA_KEYS_30 and not key.startswith("x-"))
    if unknown:
        raise UnconvertibleSpec(where, f"{', '.join(unknown)}: no OpenAPI 3.0 form")
    return schema


def _is_null(branch: Any) -> bool:
    if not isinstance(branch, dict) or branch.get("type") not in ("null", ["null"]):
        return False
    return all(key == "type" or key in ANNOTATIONS for key in branch)


def _examples(schema: dict[str, Any], where: str) -> dict[str, Any]:
    examples = schema.pop("examples", None)
    if isinstance(examples, list) and examples:
        schema.setdefault("example", examples[0])
    return schema


def _const_and_null_enum(schema: dict[str, Any], where: str) -> dict[str, Any]:
    if "const" in schema:
        if "enum" in schema:
            raise UnconvertibleSpec(where, "const next to enum")
        schema["enum"] = [schema.pop("const")]
    if isinstance(schema.get("enum"), list) and None in schema["enum"]:
        schema["enum"] = [value for value in schema["enum"] if value is not None]
        schema["nullable"] = True
        if not schema["enum"]:
            raise UnconvertibleSpec(where, "an enum of only null has no OpenAPI 3.0 form")
    return schema


def _type_list(schema: dict[str, Any], where: str) -> dict[str, Any]:
    declared = schema.get("type")
    if declared == "null":
        raise UnconvertibleSpec(f"{where}/type", "a schema of type null alone has no OpenAPI 3.0 form")
    if not isinstance(declared, list):
        return schema
    if "null" in declared:
        schema["nullable"] = True
    types = [name for name in declared if name != "null"]
    if not types:
        raise UnconvertibleSpec(f"{where}/type", "a schema of type null alone has no OpenAPI 3.0 form")
    if len(types) == 1:
        schema["type"] = types[0]
        return schema
    if "anyOf" in schema:
        raise UnconvertibleSpec(f"{where}/type", "a list of types next to anyOf")
    del schema["type"]
    schema["anyOf"] = [{"type": name} for name in types]
    return schema


def _single_branch(schema: dict[str, Any], where: str) -> dict[str, Any]:
    """`anyOf: [X, null]` became `anyOf: [X]` + nullable: fold X into its parent where nothing clashes."""
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if not isinstance(branches, list) or len(branches) != 1:
            continue
        (branch,) = branches
        del schema[key]
        clash = any(name in schema and name not in ANNOTATIONS for name in branch)
        if "$ref" in branch or clash:
            schema.setdefault("allOf", []).append(branch)
        else:
            schema = {**branch, **schema}
    return schema


def _exclusive_bounds(schema: dict[str, Any], where: str) -> dict[str, Any]:
    for exclusive, bound, stricter in (("exclusiveMinimum", "minimum", max), ("exclusiveMaximum", "maximum", min)):
        limit = schema.get(exclusive)
        if limit is None or isinstance(limit, bool):
            continue
        if bound in schema and stricter(schema[bound], limit) == schema[bound] and schema[bound] != limit:
            del schema[exclusive]  # the inclusive bound is already the stricter one
        else:
            schema[bound], schema[exclusive] = limit, True
    return schema


def _content_encoding(schema: dict[str, Any], where: str) -> dict[str, Any]:
    media_type = schema.pop("contentMediaType", None)
    encoding = schema.pop("contentEncoding", None)
    if media_type is None and encoding is None:
        return schema
    if schema.get("type", "string") != "string":
        raise UnconvertibleSpec(where, "contentMediaType or contentEncoding on a schema that is not a string")
    if encoding == "base64":
        schema.setdefault("format", "byte")
    elif encoding in (None, "binary", "8bit", "7bit"):
        schema.setdefault("format", "binary")
    else:
        raise UnconvertibleSpec(f"{where}/contentEncoding", f"{encoding!r} has no OpenAPI 3.0 format")
    schema.setdefault("type", "string")
    return schema


def _prefix_items(schema: dict[str, Any], where: str) -> dict[str, Any]:
    prefix = schema.pop("prefixItems", None)
    if prefix is None:
        return schema
    rest = schema.get("items")
    if rest == {"not": {}}:  # `items: false`: the tuple is closed
        schema.setdefault("maxItems", len(prefix))
        rest = None
    branches = _distinct([*prefix, *([rest] if rest is not None else [])])
    schema["items"] = branches[0] if len(branches) == 1 else {"anyOf": branches}
    return schema


def _pattern_properties(schema: dict[str, Any], where: str) -> dict[str, Any]:
    patterns = schema.pop("patternProperties", None)
    if not patterns:
        return schema
    others = schema.get("additionalProperties")
    values = _distinct([*patterns.values(), *([others] if isinstance(others, dict) else [])])
    schema["additionalProperties"] = values[0] if len(values) == 1 else {"anyOf": values}
    return schema


def _ref_siblings(schema: dict[str, Any], where: str) -> dict[str, Any]:
    """3.0 ignores whatever sits beside `$ref`; `allOf: [$ref]` keeps it in force."""
    if "$ref" not in schema or len(schema) == 1:
        return schema
    siblings = {key: value for key, value in schema.items() if key != "$ref"}
    return {**siblings, "allOf": [{"$ref": schema["$ref"]}, *siblings.pop("allOf", [])]}


_LOWERINGS: tuple[Callable[[dict[str, Any], str], dict[str, Any]], ...] = (
    _examples,
    _const_and_null_enum,
    _type_list,
    _single_branch,
    _exclusive_bounds,
    _content_encoding,
    _prefix_items,
    _pattern_properties,
    _ref_siblings,
)


def _distinct(schemas: list[Any]) -> list[Any]:
    seen: dict[str, Any] = {}
    for schema in schemas:
        seen.setdefault(json.dumps(schema, sort_keys=True), schema)
    return list(seen.values())


def _at(where: str, token: str) -> str:
    return f"{where}/{escape_pointer(token)}"
