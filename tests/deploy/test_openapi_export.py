"""OpenAPI 3.1 → 3.0.3 for API Gateway: the real app document, each lowering, and what must fail loudly."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV30SpecValidator
from typer.testing import CliRunner

from skycart_deploy.cli import app
from skycart_deploy.openapi import UnconvertibleSpec, app_document, to_openapi30

# JSON Schema 2020-12 keywords OpenAPI 3.0's Schema Object does not have.
ONLY_31 = {
    "const", "examples", "prefixItems", "contentMediaType", "contentEncoding", "contentSchema", "$defs", "$id",
    "$schema", "$anchor", "$dynamicRef", "$dynamicAnchor", "$comment", "if", "then", "else", "dependentSchemas",
    "dependentRequired", "unevaluatedProperties", "unevaluatedItems", "contains", "minContains", "maxContains",
    "patternProperties", "propertyNames",
}  # fmt: skip


@pytest.fixture(scope="module")
def original() -> dict[str, Any]:
    return app_document()


@pytest.fixture(scope="module")
def converted(original: dict[str, Any]) -> dict[str, Any]:
    return to_openapi30(original)


SUBSCHEMA = ("items", "not", "additionalProperties", "propertyNames", "contains", "if", "then", "else")
SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")


def _schemas(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every Schema Object in a document: components, parameters, headers, media types, and all nested ones."""
    roots = list(doc["components"]["schemas"].values()) + [holder["schema"] for holder in _holders(doc["paths"])]
    return [schema for root in roots for schema in _walk(root)]


def _holders(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get("schema"), dict):
            yield node
        for value in node.values():
            yield from _holders(value)
    elif isinstance(node, list):
        for value in node:
            yield from _holders(value)


def _walk(schema: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(schema, dict):
        return
    yield schema
    for key in SUBSCHEMA:
        yield from _walk(schema.get(key))
    for key in SUBSCHEMA_LISTS:
        for branch in schema.get(key) or []:
            yield from _walk(branch)
    for key in SUBSCHEMA_MAPS:
        for sub in (schema.get(key) or {}).values():
            yield from _walk(sub)


def test_app_document_is_openapi_31_with_the_constructs_to_lower(original):
    schemas = list(_schemas(original))
    assert original["openapi"].startswith("3.1")
    assert any(s.get("type") == "null" for s in schemas) and any(ONLY_31 & set(s) for s in schemas)


def test_converted_app_document_is_openapi_30_without_any_31_construct(converted):
    schemas = list(_schemas(converted))
    assert converted["openapi"] == "3.0.3" and converted["info"]["description"].strip()
    assert len(schemas) > 200
    assert not [s for s in schemas if s.get("type") == "null" or isinstance(s.get("type"), list)]
    assert not [sorted(ONLY_31 & set(s)) for s in schemas if ONLY_31 & set(s)]
    assert not [s for s in schemas if "$ref" in s and len(s) > 1]
    bounded = [s for s in schemas if "exclusiveMinimum" in s or "exclusiveMaximum" in s]
    assert bounded and all(isinstance(s.get("exclusiveMinimum", s.get("exclusiveMaximum")), bool) for s in bounded)


def test_converted_app_document_validates_against_the_openapi_30_schema(converted):
    assert [str(error)[:300] for error in OpenAPIV30SpecValidator(converted).iter_errors()] == []


def test_converted_app_document_names_every_model_alphanumerically_and_keeps_refs_resolving(converted):
    names = set(converted["components"]["schemas"])
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(converted)))
    assert all(re.fullmatch(r"[A-Za-z0-9]+", name) for name in names)
    assert refs <= names and "PageAirlineOut" in names


def test_converted_app_document_keeps_every_operation(original, converted):
    def operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
        return {(path, method) for path, item in doc["paths"].items() for method in item}

    assert operations(converted) == operations(original)


def test_conversion_of_a_converted_document_changes_nothing(converted):
    assert to_openapi30(converted) == converted


def _doc(schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1", "description": "d"},
        "paths": {},
        "components": {"schemas": {"Thing": schema}},
        **extra,
    }


def _lowered(schema: dict[str, Any]) -> dict[str, Any]:
    return to_openapi30(_doc(schema))["components"]["schemas"]["Thing"]


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (
            {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}], "title": "Code"},
            {"type": "string", "maxLength": 3, "nullable": True, "title": "Code"},
        ),
        (
            {"anyOf": [{"$ref": "#/components/schemas/Other"}, {"type": "null"}], "title": "Other"},
            {"allOf": [{"$ref": "#/components/schemas/Other"}], "nullable": True, "title": "Other"},
        ),
        (
            {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]},
            {"anyOf": [{"type": "integer"}, {"type": "string"}], "nullable": True},
        ),
        ({"type": ["string", "null"]}, {"type": "string", "nullable": True}),
        ({"type": ["string", "integer"]}, {"anyOf": [{"type": "string"}, {"type": "integer"}]}),
        ({"type": "string", "examples": ["SK", "LH"]}, {"type": "string", "example": "SK"}),
        ({"const": "EUR"}, {"enum": ["EUR"]}),
        ({"enum": ["a", None]}, {"enum": ["a"], "nullable": True}),
        ({"type": "number", "exclusiveMinimum": 0}, {"type": "number", "minimum": 0, "exclusiveMinimum": True}),
        ({"type": "number", "exclusiveMaximum": 10, "maximum": 5}, {"type": "number", "maximum": 5}),
        (
            {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"},
            {"type": "string", "format": "binary"},
        ),
        ({"type": "string", "contentEncoding": "base64"}, {"type": "string", "format": "byte"}),
        (
            {"$ref": "#/components/schemas/Other", "description": "why"},
            {"description": "why", "allOf": [{"$ref": "#/components/schemas/Other"}]},
        ),
        (
            {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False},
            {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}, "maxItems": 2},
        ),
        (
            {"type": "object", "patternProperties": {"^[A-Z]{3}$": {"type": "string"}}, "propertyNames": {}},
            {"type": "object", "additionalProperties": {"type": "string"}},
        ),
        (
            {"type": "object", "properties": {"any": True, "none": False}},
            {"type": "object", "properties": {"any": {}, "none": {"not": {}}}},
        ),
    ],
    ids=[
        "anyOf-null-nullable", "ref-or-null", "union-or-null", "type-list-null", "type-list", "examples-example",
        "const-enum", "enum-null", "exclusive-minimum", "stricter-inclusive-maximum", "binary-upload", "base64",
        "ref-siblings", "prefix-items", "pattern-properties", "boolean-schemas",
    ],
)  # fmt: skip
def test_each_31_construct_lowers_to_its_30_form(schema, expected):
    assert _lowered(schema) == expected


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        ({"if": {"type": "string"}, "then": {"minLength": 1}}, "/components/schemas/Thing"),
        (
            {"type": "object", "properties": {"a b": {"unevaluatedProperties": False}}},
            "/components/schemas/Thing/properties/a b",
        ),
        ({"type": "null"}, "/components/schemas/Thing/type"),
        ({"anyOf": [{"type": "null"}]}, "/components/schemas/Thing/anyOf"),
        ({"$defs": {"x": {}}, "type": "object"}, "/components/schemas/Thing"),
        ({"type": "string", "contentEncoding": "base32"}, "/components/schemas/Thing/contentEncoding"),
    ],
    ids=["if-then", "unevaluated-nested", "null-alone", "only-null-branch", "defs", "base32"],
)
def test_an_unconvertible_construct_fails_loudly_with_its_location(schema, where):
    with pytest.raises(UnconvertibleSpec) as raised:
        to_openapi30(_doc(schema))
    assert raised.value.where == where


def test_webhooks_fail_loudly():
    with pytest.raises(UnconvertibleSpec, match="webhooks"):
        to_openapi30(_doc({}, webhooks={"placed": {"post": {"responses": {"200": {"description": "ok"}}}}}))


def test_a_document_without_info_description_is_refused():
    doc = _doc({})
    del doc["info"]["description"]
    with pytest.raises(UnconvertibleSpec, match="/info/description"):
        to_openapi30(doc)


def test_parameter_examples_map_is_kept_because_openapi_30_has_it():
    examples = {"sk": {"value": "SK"}}
    parameter = {"name": "code", "in": "path", "required": True, "schema": {"type": "string"}, "examples": examples}
    doc = _doc(
        {}, paths={"/a/{code}": {"get": {"parameters": [parameter], "responses": {"204": {"description": "x"}}}}}
    )

    converted = to_openapi30(doc)["paths"]["/a/{code}"]["get"]["parameters"][0]

    assert converted["examples"] == examples


def test_inline_primitive_response_schema_becomes_a_named_model():
    response = {"200": {"description": "m", "content": {"text/plain": {"schema": {"type": "string"}}}}}
    doc = _doc({}, paths={"/metrics": {"get": {"operationId": "metrics_get", "responses": response}}})

    converted = to_openapi30(doc)

    media = converted["paths"]["/metrics"]["get"]["responses"]["200"]["content"]["text/plain"]
    assert media["schema"] == {"$ref": "#/components/schemas/MetricsGet200Response"}
    assert converted["components"]["schemas"]["MetricsGet200Response"] == {"type": "string"}


def test_export_prints_the_converted_app_document(converted):
    outcome = CliRunner().invoke(app, ["openapi", "export"], catch_exceptions=False)

    assert outcome.exit_code == 0
    assert json.loads(outcome.stdout) == converted


def test_export_writes_a_converted_input_file_to_output(tmp_path):
    source, target = tmp_path / "in.json", tmp_path / "out.json"
    source.write_text(json.dumps(_doc({"type": ["string", "null"]})))

    outcome = CliRunner().invoke(app, ["openapi", "export", "--input", str(source), "--output", str(target)])

    assert outcome.exit_code == 0 and outcome.stdout == ""
    written = json.loads(target.read_text())
    assert written["openapi"] == "3.0.3"
    assert written["components"]["schemas"]["Thing"] == {"type": "string", "nullable": True}


def test_export_fails_with_the_location_of_what_it_cannot_convert(tmp_path):
    source = tmp_path / "in.json"
    source.write_text(json.dumps(_doc({"dependentRequired": {"a": ["b"]}})))

    outcome = CliRunner().invoke(app, ["openapi", "export", "--input", str(source)])

    assert outcome.exit_code == 1
    assert "/components/schemas/Thing: dependentRequired: no OpenAPI 3.0 form" in outcome.stderr
