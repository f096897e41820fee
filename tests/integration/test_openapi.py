"""GET /openapi.json documents exactly the routes app.py has."""

from typing import Any

from chalice.test import Client

import app as app_module
from chalicelib.registrations.actions import BODY_BY_ACTION

ACTION_ROUTE = "/registrations/{registration_id}/{action}"


def test_the_document_and_the_routes_are_the_same_set(client: Client) -> None:
    response = client.http.get("/openapi.json")
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
    assert documented == routed


def test_every_reference_resolves(client: Client) -> None:
    document = client.http.get("/openapi.json").json_body
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


def test_request_bodies_come_from_the_models(client: Client) -> None:
    schemas = client.http.get("/openapi.json").json_body["components"]["schemas"]
    registration = schemas["RegistrationIn"]
    assert registration["additionalProperties"] is False
    assert set(registration["required"]) == {"full_name", "email", "phone", "address", "city", "package_id"}
    assert "status" not in registration["properties"]
