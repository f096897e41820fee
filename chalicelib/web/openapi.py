"""The OpenAPI 3.1 document of the HTTP API, served at ``GET /openapi.json``.

Request bodies come from the pydantic models, so they cannot drift from what the
API accepts; each workflow action gets its own path with its own body.  A test
checks that the paths here and the routes of ``app.py`` are the same set.
"""

from pydantic import BaseModel

from chalicelib.jsontypes import Json
from chalicelib.registrations.actions import BODY_BY_ACTION
from chalicelib.registrations.models import PackageIn, RegistrationIn
from chalicelib.statuses import RegistrationStatus
from chalicelib.workflow import TRANSITION_BY_ACTION

_STAFF: list[Json] = [{"bearer": []}]
_UUID = {"type": "string", "format": "uuid"}
_PUBLIC: list[Json] = []


def document() -> Json:
    """The whole document."""
    schemas: Json = {}
    paths: Json = {
        "/openapi.json": {"get": _operation("This document", _PUBLIC, {"200": _json("The OpenAPI document", {})})},
        "/packages": {
            "get": _operation(
                "Active internet packages, cheapest first",
                _PUBLIC,
                {"200": _json("Packages", {"type": "array", "items": _ref("Package")})},
            ),
            "post": _operation(
                "Create a package (admin)",
                _STAFF,
                {"201": _json("The package", _ref("Package")), **_errors(400, 401, 403, 409, 413)},
                _body(PackageIn, schemas),
            ),
        },
        "/registrations": {
            "post": _operation(
                "Register for a package; a one-time code goes to the phone on WhatsApp",
                _PUBLIC,
                {"201": _json("The registration", _ref("Registration")), **_errors(400, 409, 413, 422)},
                _body(RegistrationIn, schemas),
                [_header("Idempotency-Key", "Replays the first response for the same body; 422 for another body")],
            ),
            "get": _operation(
                "Registrations, newest first, one page at a time (staff)",
                _STAFF,
                {"200": _json("A page", _ref("RegistrationPage")), **_errors(400, 401, 403)},
                parameters=_list_parameters(),
            ),
        },
        "/registrations/{registration_id}": {
            "get": _operation(
                "One registration with its history, customer and ticket (staff)",
                _STAFF,
                {"200": _json("The registration", _ref("RegistrationDetail")), **_errors(401, 403, 404)},
                parameters=[_id_parameter()],
            )
        },
        "/registrations/{registration_id}/resend-code": {
            "post": _operation(
                "Send a new one-time code (once a minute, five codes at most)",
                _PUBLIC,
                {"200": _json("Sent", _ref("CodeSent")), **_errors(404, 409, 429)},
                parameters=[_id_parameter()],
            )
        },
    }
    for action, model in BODY_BY_ACTION.items():
        transition = TRANSITION_BY_ACTION[action]
        who = ("the registrant with the code, or " if transition.public_with_code else "") + ", ".join(
            sorted(transition.roles)
        )
        security = [*_STAFF, {}] if transition.public_with_code else _STAFF
        paths[f"/registrations/{{registration_id}}/{action}"] = {
            "post": _operation(
                f"{action}: {', '.join(sorted(transition.sources))} -> {transition.target} ({who})",
                security,
                {"200": _json("The registration", _ref("Registration")), **_errors(400, 401, 403, 404, 409, 413, 429)},
                _body(model, schemas) if model is not None else None,
                [_id_parameter()],
            )
        }
    paths["/registrations/{registration_id}/create-customer"] = {
        "post": _operation(
            "Queue the creation of the customer (approver); 200 with the customer once it exists",
            _STAFF,
            {
                "202": _json("Queued", _ref("Queued")),
                "200": _json("The customer exists", {"type": "object"}),
                **_errors(401, 403, 404, 409),
            },
            parameters=[_id_parameter()],
        )
    }
    schemas.update(_response_schemas())
    return {
        "openapi": "3.1.0",
        "info": {"title": "Registration backend", "version": "1.0.0"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def _operation(
    summary: str,
    security: list[Json],
    responses: Json,
    body: Json | None = None,
    parameters: list[Json] | None = None,
) -> Json:
    operation: Json = {"summary": summary, "security": security, "responses": responses}
    if body is not None:
        operation["requestBody"] = body
    if parameters:
        operation["parameters"] = parameters
    return operation


def _body(model: type[BaseModel], schemas: Json) -> Json:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return {"required": True, "content": {"application/json": {"schema": _ref(model.__name__)}}}


def _json(description: str, schema: Json) -> Json:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


_ERROR_TEXT = {
    400: "Bad input",
    401: "No valid staff token",
    403: "The token's roles do not allow this",
    404: "No such registration",
    409: "Not allowed from the current status, or a duplicate",
    413: "Body too large",
    422: "Idempotency-Key reused with another body",
    429: "Too many tries",
    503: "A dependency is down; nothing was changed",
}


def _errors(*statuses: int) -> Json:
    return {str(status): _json(_ERROR_TEXT[status], _ref("Error")) for status in (*statuses, 503)}


def _header(name: str, description: str) -> Json:
    schema = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"}
    return {"name": name, "in": "header", "required": False, "description": description, "schema": schema}


def _id_parameter() -> Json:
    return {"name": "registration_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}


def _list_parameters() -> list[Json]:
    def query(name: str, schema: Json) -> Json:
        return {"name": name, "in": "query", "required": False, "schema": schema}

    return [
        query("status", {"type": "string", "enum": [s.value for s in RegistrationStatus]}),
        query("city", {"type": "string", "maxLength": 100}),
        query("created_from", {"type": "string", "format": "date-time"}),
        query("created_to", {"type": "string", "format": "date-time"}),
        query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
        query("cursor", {"type": "string", "maxLength": 200}),
    ]


def _response_schemas() -> Json:
    text, nullable_text = {"type": "string"}, {"type": ["string", "null"]}
    when = {"type": "string", "format": "date-time"}
    registration = {
        "type": "object",
        "required": ["id", "status", "full_name", "email", "phone", "created_at"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": [s.value for s in RegistrationStatus]},
            "full_name": text,
            "email": text,
            "phone": {"type": "string", "pattern": r"^\+62\d{8,13}$"},
            "address": text,
            "city": text,
            "package_id": {"type": "string", "format": "uuid"},
            "notes": nullable_text,
            "survey_scheduled_at": {"type": ["string", "null"], "format": "date-time"},
            "surveyor": nullable_text,
            "survey_feasible": {"type": ["boolean", "null"]},
            "survey_notes": nullable_text,
            "status_reason": nullable_text,
            "created_at": when,
            "updated_at": when,
        },
    }
    history_entry = {
        "type": "object",
        "required": ["action", "to_status", "actor", "at"],
        "properties": {"action": text, "from_status": nullable_text, "to_status": text, "actor": text, "at": when},
    }
    detail = {
        "allOf": [
            _ref("Registration"),
            {
                "type": "object",
                "required": ["history", "customer", "ticket"],
                "properties": {
                    "history": {"type": "array", "items": history_entry},
                    "customer": {"type": ["object", "null"]},
                    "ticket": {"type": ["object", "null"]},
                },
            },
        ]
    }
    return {
        "Registration": registration,
        "RegistrationDetail": detail,
        "RegistrationPage": {
            "type": "object",
            "required": ["items", "next_cursor"],
            "properties": {"items": {"type": "array", "items": _ref("Registration")}, "next_cursor": nullable_text},
        },
        "Package": {
            "type": "object",
            "required": ["id", "name", "speed_mbps", "monthly_price_idr"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "name": text,
                "speed_mbps": {"type": "integer"},
                "monthly_price_idr": {"type": "integer"},
            },
        },
        "Queued": {
            "type": "object",
            "required": ["status", "registration_id", "correlation_id"],
            "properties": {"status": {"const": "queued"}, "registration_id": _UUID, "correlation_id": text},
        },
        "CodeSent": {
            "type": "object",
            "required": ["registration_id", "expires_in_s"],
            "properties": {"registration_id": _UUID, "expires_in_s": {"type": "integer"}},
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message", "details"],
                    "properties": {"code": text, "message": text, "details": {}},
                }
            },
        },
    }
