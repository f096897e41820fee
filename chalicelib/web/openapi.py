"""The OpenAPI 3.1 document of the HTTP API, served at ``GET /openapi.json``.

Request bodies come from the pydantic models, so they cannot drift from what the
API accepts; each workflow action gets its own path with its own body.  A test
checks that the paths here and the routes of ``app.py`` are the same set (but for
``GET /docs``, the page that renders this document).
"""

from typing import Any

from pydantic import BaseModel

from chalicelib.jsontypes import Json
from chalicelib.privacy.models import ErasureIn
from chalicelib.registrations.actions import BODY_BY_ACTION
from chalicelib.registrations.models import PackageIn, RegistrationIn
from chalicelib.statuses import RegistrationStatus
from chalicelib.web import examples
from chalicelib.workflow import TRANSITION_BY_ACTION

_STAFF: list[Json] = [{"bearer": []}]
# The groups of /docs, one per feature; every operation names exactly one.
PACKAGES, REGISTRATIONS, STAFF_ACTIONS, PERSONAL_DATA, INTERNAL = (
    "packages",
    "registrations",
    "staff actions",
    "personal data",
    "internal",
)
TAGS: dict[str, str] = {
    PACKAGES: "The internet packages on offer",
    REGISTRATIONS: "Signing up (register, the one-time code, verify) and staff finding and reading registrations",
    STAFF_ACTIONS: "The workflow after sign-up: survey, approve, reject, cancel, create the customer",
    PERSONAL_DATA: "What is held about a person: export and erasure on request",
    INTERNAL: "The API's own description",
}
_UUID = {"type": "string", "format": "uuid"}
_PUBLIC: list[Json] = []


def document() -> Json:
    """The whole document."""
    schemas: Json = {}
    paths: Json = {
        "/openapi.json": {
            "get": _operation(
                "This document",
                _PUBLIC,
                {"200": _json("The OpenAPI document", _ref("OpenApiDocument"))},
                errors={},
                tag=INTERNAL,
            )
        },
        "/packages": {
            "get": _operation(
                "Active internet packages, cheapest first",
                _PUBLIC,
                {"200": _json("Packages", {"type": "array", "items": _ref("Package")})},
                tag=PACKAGES,
            ),
            "post": _operation(
                "Create a package (admin)",
                _STAFF,
                {"201": _json("The package", _ref("Package"))},
                _body(PackageIn, schemas),
                errors={**_BODY, **_AUTH, 409: ["duplicate_package"]},
                tag=PACKAGES,
            ),
        },
        "/registrations": {
            "post": _operation(
                "Register for a package; a one-time code goes to the phone on WhatsApp. A phone or e-mail "
                "of an active registration answers 409 naming neither (the registrant gets a WhatsApp "
                "message with their registration's id and status instead)",
                _PUBLIC,
                {"201": _json("The registration", _ref("Registration"))},
                _body(RegistrationIn, schemas),
                [
                    _header(
                        "Idempotency-Key",
                        "1 to 255 visible ASCII characters, kept a day, bound to the phone: the same phone and "
                        "body replay the first answer, the same phone with another body is 422, another phone "
                        "is another key",
                    )
                ],
                errors={**_BODY, 409: ["duplicate_registration"], 422: ["idempotency_key_reused"]},
                tag=REGISTRATIONS,
            ),
            "get": _operation(
                "Registrations, newest first, one page at a time (staff); search with q",
                _STAFF,
                {"200": _json("A page", _ref("RegistrationPage"))},
                parameters=_list_parameters(),
                errors={400: ["invalid_input"], **_AUTH},
                tag=REGISTRATIONS,
            ),
        },
        "/registrations/{registration_id}": {
            "get": _operation(
                "One registration with its history, customer and ticket (staff)",
                _STAFF,
                {"200": _json("The registration", _ref("RegistrationDetail"))},
                parameters=[_id_parameter()],
                errors={**_AUTH, 404: ["not_found"]},
                tag=REGISTRATIONS,
            )
        },
        "/registrations/{registration_id}/resend-code": {
            "post": _operation(
                "Send a new one-time code (once a minute, five codes at most)",
                _PUBLIC,
                {"200": _json("Sent", _ref("CodeSent"))},
                parameters=[_id_parameter()],
                errors={404: ["not_found"], 409: ["not_awaiting_code"], 415: ["unsupported_media_type"]},
                tag=REGISTRATIONS,
            )
        },
    }
    for action, model in BODY_BY_ACTION.items():
        transition = TRANSITION_BY_ACTION[action]
        who = ("the registrant with the code, or " if transition.public_with_code else "") + ", ".join(
            sorted(transition.roles)
        )
        security = [*_STAFF, {}] if transition.public_with_code else _STAFF
        errors: dict[int, list[str]] = {**_AUTH, 404: ["not_found"], 409: ["transition_not_allowed"]}
        errors |= _BODY if model is not None else {415: ["unsupported_media_type"]}
        if transition.public_with_code:
            errors |= {400: ["invalid_input", "invalid_code"], 409: ["transition_not_allowed", "not_awaiting_code"]}
        paths[f"/registrations/{{registration_id}}/{action}"] = {
            "post": _operation(
                f"{action}: {', '.join(sorted(transition.sources))} -> {transition.target} ({who})",
                security,
                {"200": _json("The registration", _ref("Registration"))},
                _body(model, schemas, required=not transition.public_with_code) if model is not None else None,
                [_id_parameter()],
                errors=errors,
                tag=REGISTRATIONS if transition.public_with_code else STAFF_ACTIONS,
            )
        }
    paths["/registrations/{registration_id}/create-customer"] = {
        "post": _operation(
            "Queue the creation of the customer (approver); 200 with the customer once it exists",
            _STAFF,
            {
                "202": _json("Queued", _ref("Queued")),
                "200": _json("The customer exists", _ref("CustomerCreated")),
            },
            parameters=[_id_parameter()],
            errors={**_AUTH, 404: ["not_found"], 409: ["transition_not_allowed"], 415: ["unsupported_media_type"]},
            tag=STAFF_ACTIONS,
        )
    }
    paths["/registrations/{registration_id}/personal-data"] = {
        "get": _operation(
            "Everything held about the registration's person (admin): the registration, its history, the "
            "messages sent to them, the customer and ticket if any, the erasure if any, and their other "
            "registrations (same phone or e-mail). Each call is on the access log",
            _STAFF,
            {"200": _json("What is held about the person", _ref("PersonalData"))},
            parameters=[_id_parameter()],
            errors={**_AUTH, 404: ["not_found"]},
            tag=PERSONAL_DATA,
        ),
        "delete": _operation(
            "Erase the person's data now (admin): name, e-mail, phone, address and free text; an active "
            "registration is cancelled. A customer's data is kept (409). The same answer when repeated",
            _STAFF,
            {"200": _json("Erased", _ref("Erased"))},
            _body(ErasureIn, schemas),
            [_id_parameter()],
            errors={**_BODY, **_AUTH, 404: ["not_found"], 409: ["customer_data_kept"]},
            tag=PERSONAL_DATA,
        ),
    }
    schemas.update(_response_schemas())
    _describe_fields(schemas)
    _describe_fields(paths)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Registration backend",
            "version": "1.0.0",
            "description": 'Errors are `{"error": {"code", "message", "details"}}`; each response below names '
            "its codes (the whole table: docs/api.md, Errors).",
        },
        # Relative to where this document is served: the stage's base path in API Gateway
        # (``/api``), the root locally; so "Try it out" on ``GET /docs`` calls this API.
        "servers": [{"url": ".", "description": "where this document is served from"}],
        "tags": _tags(paths),
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


# Error codes by status, for the kinds of input a route reads.
_BODY: dict[int, list[str]] = {
    400: ["invalid_input"],
    413: ["payload_too_large"],
    415: ["unsupported_media_type"],
}
# A staff route: a token (and, in AWS, the JWKS behind it) and a role.
_AUTH: dict[int, list[str]] = {401: ["unauthorized"], 403: ["forbidden"]}
# Every operation: API Gateway's throttle (429), a fault (500), a dependency down (503).
_ALWAYS: dict[int, list[str]] = {429: ["too_many_requests"], 500: ["internal_error"], 503: ["service_unavailable"]}


def _operation(
    summary: str,
    security: list[Json],
    responses: Json,
    body: Json | None = None,
    parameters: list[Json] | None = None,
    *,
    errors: dict[int, list[str]] | None = None,
    tag: str,
) -> Json:
    """One operation in its feature's group (``tag``, one of ``TAGS``); ``errors``: the error codes it
    answers by status (``_ALWAYS``'s are added)."""
    if tag not in TAGS:
        raise ValueError(f"{tag!r} is not one of the groups of /docs")
    codes = {**(errors if errors is not None else {}), **_ALWAYS}
    if 429 in (errors or {}):
        codes[429] = sorted({*codes[429], *(errors or {})[429]})
    operation: Json = {
        "tags": [tag],
        "summary": summary,
        "security": security,
        "responses": {**responses, **{str(status): _error(codes[status]) for status in sorted(codes)}},
    }
    if body is not None:
        operation["requestBody"] = body
    if parameters:
        operation["parameters"] = parameters
    return operation


def _error(codes: list[str]) -> Json:
    """An error response: the one ``Error`` schema, and one example per code it may carry (the codes of
    the table, each with what it means)."""
    from chalicelib.errors import ERROR_CODE_BY_NAME

    description = "; ".join(f"`{code}`: {ERROR_CODE_BY_NAME[code].meaning}" for code in codes)
    content = {
        "schema": _ref("Error"),
        "examples": {code: {"summary": code, "value": _error_example(code)} for code in codes},
    }
    response: Json = {"description": description, "content": {"application/json": content}}
    if {"too_many_requests", "service_unavailable"} & set(codes):
        response["headers"] = {
            "Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "string"}}
        }
    return response


def _error_example(code: str) -> Json:
    from chalicelib.errors import ERROR_CODE_BY_NAME

    meaning = ERROR_CODE_BY_NAME[code].meaning.split(";")[0].split(" (")[0]
    message = meaning[0].lower() + meaning[1:]
    return {"error": {"code": code, "message": message, "details": examples.ERROR_DETAILS.get(code, {})}}


def _tags(paths: Json) -> list[Json]:
    """The groups used, in the order of ``TAGS``."""
    used = {tag for item in paths.values() for operation in item.values() for tag in operation["tags"]}
    return [{"name": name, "description": text} for name, text in TAGS.items() if name in used]


def _body(model: type[BaseModel], schemas: Json, required: bool = True) -> Json:
    """The request body; ``required=False`` for verify, whose body staff may leave out."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    example = examples.BODY_EXAMPLES[model.__name__]()
    content = {"application/json": {"schema": _ref(model.__name__), "example": example}}
    return {"required": required, "content": content}


def _json(description: str, schema: Json) -> Json:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _header(name: str, description: str) -> Json:
    schema = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"}
    return {"name": name, "in": "header", "required": False, "description": description, "schema": schema}


def _id_parameter() -> Json:
    return {
        "name": "registration_id",
        "in": "path",
        "required": True,
        "description": examples.PARAMETER_DESCRIPTIONS["registration_id"],
        "schema": {"type": "string", "format": "uuid"},
    }


def _list_parameters() -> list[Json]:
    def query(name: str, schema: Json, example: Any = None) -> Json:
        described = {"description": examples.PARAMETER_DESCRIPTIONS[name]}
        found = {"name": name, "in": "query", "required": False, "schema": schema, **described}
        return found | ({"example": example} if example is not None else {})

    day_or_moment = {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}
    return [
        query("q", {"type": "string", "minLength": 1, "maxLength": 200}, "0812-3456-7890"),
        query("status", {"type": "string", "enum": [s.value for s in RegistrationStatus]}),
        query("city", {"type": "string", "maxLength": 100}, "bandung"),
        query("created_from", day_or_moment, "2026-11-01"),
        query("created_to", day_or_moment),
        query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
        query("cursor", {"type": "string", "maxLength": 200}),
    ]


def _describe_fields(node: Any) -> None:
    """A description on every property of every object schema (``examples.FIELD_DESCRIPTIONS``)."""
    if isinstance(node, dict):
        for name, schema in (node.get("properties") or {}).items():
            if isinstance(schema, dict) and "description" not in schema and name in examples.FIELD_DESCRIPTIONS:
                # A copy: property schemas are shared dicts (``text``), and one field's words are not another's.
                node["properties"][name] = {**schema, "description": examples.FIELD_DESCRIPTIONS[name]}
        for value in node.values():
            _describe_fields(value)
    elif isinstance(node, list):
        for value in node:
            _describe_fields(value)


def _response_schemas() -> Json:
    """Every answer's schema, named, typed throughout (nothing Swagger UI would show as ``any``),
    each with an example (``examples.RESPONSE_EXAMPLES``)."""
    text, nullable_text = {"type": "string"}, {"type": ["string", "null"]}
    when = {"type": "string", "format": "date-time"}
    registration_properties: Json = {
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
    }
    registration_required = ["id", "status", "full_name", "email", "phone", "created_at"]
    nullable = {"anyOf": [_ref("Customer"), {"type": "null"}]}
    # What GET /registrations/{id}/personal-data holds about one registration.
    person_properties: Json = {
        "registration": _ref("Registration"),
        "history": {"type": "array", "items": _ref("HistoryEntry")},
        "messages": {"type": "array", "items": _ref("MessageSent")},
        "customer": nullable,
        "ticket": {"anyOf": [_ref("Ticket"), {"type": "null"}]},
        "erasure": {"anyOf": [_ref("ErasureRecord"), {"type": "null"}]},
    }
    person_required = ["registration", "history", "messages", "customer", "ticket", "erasure"]
    schemas: Json = {
        "Registration": {"type": "object", "required": registration_required, "properties": registration_properties},
        "HistoryEntry": {
            "type": "object",
            "required": ["action", "to_status", "actor", "at"],
            "properties": {
                "action": text,
                "from_status": nullable_text,
                "to_status": text,
                "actor": text,
                "reason": nullable_text,
                "at": when,
            },
        },
        "Customer": {
            "type": "object",
            "required": ["id", "customer_number", "registration_id"],
            "properties": {
                "id": _UUID,
                "customer_number": text,
                "registration_id": _UUID,
                "full_name": text,
                "email": text,
                "phone": text,
                "address": text,
                "city": text,
                "package_id": _UUID,
                "created_by": text,
                "created_at": when,
            },
        },
        "Ticket": {
            "type": "object",
            "required": ["id", "ticket_number", "customer_id", "status"],
            "properties": {
                "id": _UUID,
                "ticket_number": text,
                "customer_id": _UUID,
                "status": {"type": "string", "enum": ["open", "scheduled", "done", "cancelled"]},
                "scheduled_at": {"type": ["string", "null"], "format": "date-time"},
                "created_at": when,
                "updated_at": when,
            },
        },
        # The registration's own fields and three more; spelled out rather than ``allOf`` so that
        # /docs shows one object, not a composition.
        "RegistrationDetail": {
            "type": "object",
            "required": [*registration_required, "history", "customer", "ticket"],
            "properties": {
                **registration_properties,
                "history": {"type": "array", "items": _ref("HistoryEntry")},
                "customer": nullable,
                "ticket": {"anyOf": [_ref("Ticket"), {"type": "null"}]},
            },
        },
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
        "PersonalData": {
            "type": "object",
            "required": [*person_required, "other_registrations"],
            "properties": {
                **person_properties,
                "other_registrations": {"type": "array", "items": _ref("OtherRegistration")},
            },
        },
        # The same parts, for each of the person's other registrations.
        "OtherRegistration": {
            "type": "object",
            "required": ["registration", "history", "messages"],
            "properties": person_properties,
        },
        "MessageSent": {
            "type": "object",
            "required": ["id", "template", "status"],
            "properties": {
                "id": _UUID,
                "template": text,
                "recipient": nullable_text,
                "status": text,
                "payload": {"type": ["object", "null"], "additionalProperties": True},
                "created_at": when,
            },
        },
        "ErasureRecord": {
            "type": "object",
            "required": ["erased_by", "erased_at", "reason"],
            "properties": {"erased_by": text, "erased_at": when, "reason": text},
        },
        "Erased": {
            "type": "object",
            "required": ["id", "status", "erased_at"],
            "properties": {"id": _UUID, "status": text, "erased_at": when},
        },
        "Queued": {
            "type": "object",
            "required": ["status", "registration_id", "correlation_id"],
            "properties": {
                "status": {"type": "string", "const": "queued"},
                "registration_id": _UUID,
                "correlation_id": text,
            },
        },
        "CustomerCreated": {
            "type": "object",
            "required": ["status", "registration_id", "customer", "ticket"],
            "properties": {
                "status": {"type": "string", "const": "customer_created"},
                "registration_id": _UUID,
                "customer": _ref("Customer"),
                "ticket": _ref("Ticket"),
            },
        },
        "CodeSent": {
            "type": "object",
            "required": ["registration_id", "expires_in_s"],
            "properties": {"registration_id": _UUID, "expires_in_s": {"type": "integer"}},
        },
        "OpenApiDocument": {
            "type": "object",
            "required": ["openapi", "info", "paths"],
            "properties": {
                "openapi": text,
                "info": {"type": "object", "description": "The title, version and description"},
                "paths": {"type": "object", "description": "Every route, by path and method"},
            },
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message", "details"],
                    "properties": {
                        "code": {"type": "string", "description": "snake_case, from the table of codes"},
                        "message": {"type": "string", "description": "In words, for a person"},
                        "details": {"type": "object", "description": examples.FIELD_DESCRIPTIONS["details"]},
                    },
                }
            },
        },
    }
    for name, schema in schemas.items():
        schema["examples"] = [examples.RESPONSE_EXAMPLES[name]()]
    return schemas
