"""GET /openapi.json documents exactly the routes app.py has."""

import json
from typing import Any

from chalice.test import Client

import app as app_module
from chalicelib.registrations.actions import BODY_BY_ACTION

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
                schema = response["content"]["application/json"]["schema"]["allOf"][1]
                codes = schema["properties"]["error"]["properties"]["code"]["enum"]
                assert codes, (path, method, status)
                assert all(ERROR_CODE_BY_NAME[c].status == int(status) for c in codes), (path, method, status)
            assert {"429", "500"} <= set(operation["responses"]), (path, method)
