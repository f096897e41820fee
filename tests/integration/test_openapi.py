"""GET /openapi.json documents exactly the routes app.py has, grouped by feature, every schema named,
typed (nothing /docs would show as ``any``) and with an example that it accepts."""

import json
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # schemathesis's, no stubs
import pytest
from chalice.test import Client

import app as app_module
from chalicelib.registrations.actions import BODY_BY_ACTION
from chalicelib.web.openapi import TAGS, document

ACTION_ROUTE = "/registrations/{registration_id}/{action}"
# The page that renders the document, and its files: not part of the API it documents.
UNDOCUMENTED = {("/docs", "GET"), ("/docs/{name}", "GET")}


def test_the_document_and_the_routes_are_the_same_set(api_client: Client) -> None:
    response = api_client.http.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json_body
    assert document["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}

    routed: set[tuple[str, str]] = set()
    for path, entries in app_module.app.routes.items():
        for method in entries:
            if path == ACTION_ROUTE:
                # One Chalice route serves every action; the document gives each its own path and body.
                routed |= {(path.replace("{action}", action.value), method) for action in BODY_BY_ACTION}
            else:
                routed.add((path, method))
    assert documented == routed - UNDOCUMENTED


def test_every_reference_resolves(api_client: Client) -> None:
    document = api_client.http.get("/openapi.json").json_body
    schemas = document["components"]["schemas"]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref is not None:
                assert ref.removeprefix("#/components/schemas/") in schemas, ref
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)


def test_request_bodies_come_from_the_models(api_client: Client) -> None:
    schemas = api_client.http.get("/openapi.json").json_body["components"]["schemas"]
    registration = schemas["RegistrationIn"]
    assert registration["additionalProperties"] is False
    assert set(registration["required"]) == {"full_name", "email", "phone", "address", "city", "package_id"}
    assert "status" not in registration["properties"]


def test_every_request_body_has_an_example_its_model_accepts(api_client: Client) -> None:
    from chalicelib.privacy import models as privacy_models
    from chalicelib.registrations import models

    document = api_client.http.get("/openapi.json").json_body
    bodies = [
        operation["requestBody"]["content"]["application/json"]
        for item in document["paths"].values()
        for operation in item.values()
        if "requestBody" in operation
    ]
    assert len(bodies) == 8
    for body in bodies:
        name = body["schema"]["$ref"].rsplit("/", 1)[-1]
        model = getattr(models, name, None) or getattr(privacy_models, name)
        model.model_validate_json(json.dumps(body["example"]))  # raises when the example is refused


def test_every_field_and_parameter_is_described(api_client: Client) -> None:
    document = api_client.http.get("/openapi.json").json_body
    undescribed: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for name, schema in (node.get("properties") or {}).items():
                if isinstance(schema, dict) and not schema.get("description"):
                    undescribed.append(f"{where}.{name}")
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}[{index}]")

    walk(document, "")
    assert undescribed == []
    parameters = [p for item in document["paths"].values() for op in item.values() for p in op.get("parameters", [])]
    assert parameters
    assert all(p.get("description") for p in parameters)


def test_every_operation_names_the_error_codes_of_each_status(api_client: Client) -> None:
    from chalicelib.errors import ERROR_CODE_BY_NAME

    document = api_client.http.get("/openapi.json").json_body
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                content = response["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/Error"}, (path, method, status)
                codes = list(content["examples"])
                assert codes, (path, method, status)
                assert all(e["value"]["error"]["code"] == c for c, e in content["examples"].items())
                assert all(ERROR_CODE_BY_NAME[c].status == int(status) for c in codes), (path, method, status)
            assert {"429", "500"} <= set(operation["responses"]), (path, method)


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, operation) for path, item in doc["paths"].items() for method, operation in item.items()]


def test_every_operation_sits_in_one_group_of_its_feature() -> None:
    doc = document()
    for path, method, operation in operations(doc):
        assert len(operation["tags"]) == 1, (path, method)
        assert operation["tags"][0] in TAGS, (path, method)
    used = {operation["tags"][0] for _, _, operation in operations(doc)}
    assert [tag["name"] for tag in doc["tags"]] == [name for name in TAGS if name in used]
    assert all(tag["description"] for tag in doc["tags"])
    by_path = {(path, method): operation["tags"][0] for path, method, operation in operations(doc)}
    assert by_path[("/packages", "get")] == "packages"
    assert by_path[("/registrations", "post")] == "registrations"
    assert by_path[("/registrations/{registration_id}/verify", "post")] == "registrations"
    assert by_path[("/registrations/{registration_id}/approve", "post")] == "staff actions"
    assert by_path[("/registrations/{registration_id}/create-customer", "post")] == "staff actions"
    assert by_path[("/openapi.json", "get")] == "internal"


def test_an_operation_outside_the_groups_is_refused_when_built() -> None:
    from chalicelib.web import openapi

    with pytest.raises(ValueError, match="not one of the groups"):
        openapi._operation("x", [], {}, tag="default")


def _schemas_in(node: Any, where: str = "") -> list[tuple[str, Any]]:
    """Every schema of the document: under ``schema``, ``items``, ``properties``, ``anyOf``/``oneOf``/``allOf``."""
    found: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("schema", "items") and isinstance(value, dict):
                found += [(f"{where}/{key}", value), *_schemas_in(value, f"{where}/{key}")]
            elif key == "properties" and isinstance(value, dict):
                for name, schema in value.items():
                    found += [(f"{where}/{name}", schema), *_schemas_in(schema, f"{where}/{name}")]
            elif key in ("anyOf", "oneOf", "allOf") and isinstance(value, list):
                for i, schema in enumerate(value):
                    found += [(f"{where}/{key}[{i}]", schema), *_schemas_in(schema, f"{where}/{key}[{i}]")]
            elif key != "examples":
                found += _schemas_in(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _schemas_in(value, f"{where}[{i}]")
    return found


def test_no_schema_is_untyped_or_a_composition_of_any() -> None:
    doc = document()
    named = [(f"#/components/schemas/{name}", schema) for name, schema in doc["components"]["schemas"].items()]
    for where, schema in named + _schemas_in(doc):
        assert any(key in schema for key in ("type", "$ref", "const", "enum", "anyOf", "oneOf")), where
        assert "allOf" not in schema, f"{where}: /docs shows a composition as (any & object)"


def test_every_named_answer_schema_has_an_example_it_accepts() -> None:
    doc = document()
    components = doc["components"]
    for name, schema in components["schemas"].items():
        if name in {model.__name__ for model in BODY_BY_ACTION.values() if model} | {
            "PackageIn",
            "RegistrationIn",
            "ErasureIn",
        }:
            continue  # request bodies: their examples are checked against the models above
        assert schema.get("examples"), name
        for example in schema["examples"]:
            jsonschema.validate(example, {**schema, "components": components})


def test_every_error_example_is_an_error() -> None:
    doc = document()
    components = doc["components"]
    error = {"$ref": "#/components/schemas/Error", "components": components}
    for path, method, operation in operations(doc):
        for status, response in operation["responses"].items():
            for example in response["content"]["application/json"].get("examples", {}).values():
                jsonschema.validate(example["value"], error)
                assert example["value"]["error"]["message"][0].islower(), (path, method, status)
