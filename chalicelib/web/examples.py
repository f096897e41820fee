"""The words and examples of the OpenAPI document: an example for every request body, a description
for every field.  A test checks that each example is accepted by its model, and that every field of
every schema in the document has a description."""

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

WIB = timezone(timedelta(hours=7))
_PACKAGE_ID = "5f0c6f9e-3b7a-4d2e-9a51-2c8e4b7d1f30"


def _next_week_at_ten() -> str:
    # schedule-survey takes only the future (and 90 days at most): the example moves with the clock.
    day = datetime.now(WIB) + timedelta(days=7)
    return day.replace(hour=10, minute=0, second=0, microsecond=0).isoformat()


BODY_EXAMPLES: dict[str, Callable[[], dict[str, Any]]] = {
    "PackageIn": lambda: {"name": "Rumah 50 Mbps", "speed_mbps": 50, "monthly_price_idr": 350_000},
    "RegistrationIn": lambda: {
        "full_name": "Siti Nurhaliza",
        "email": "siti@example.co.id",
        "phone": "0812 3456 7890",
        "address": "Jl. Merdeka No. 1",
        "city": "Bandung",
        "package_id": _PACKAGE_ID,
        "notes": "after 5 pm, please",
    },
    "VerifyIn": lambda: {"code": "482913"},
    "ScheduleSurveyIn": lambda: {"scheduled_at": _next_week_at_ten(), "surveyor": "Budi"},
    "CompleteSurveyIn": lambda: {"feasible": True, "notes": "pole next to the house"},
    "ReasonIn": lambda: {"reason": "no cable in this street"},
    "ErasureIn": lambda: {"reason": "the person asked by e-mail, ticket 2291"},
}

FIELD_DESCRIPTIONS: dict[str, str] = {
    # Request bodies
    "full_name": "The registrant's name, as they write it",
    "email": "An e-mail address; two addresses are the same person when they match ignoring letter case",
    "phone": "An Indonesian mobile number as people type it (0812…, +62 812-…); stored and returned as E.164 (+62812…)",
    "address": "The street address to connect",
    "city": "The city of the address",
    "package_id": "The id of an active package (GET /packages)",
    "notes": "Anything the registrant wants staff to know (optional)",
    "name": "The package's name, unique in any letter case",
    "speed_mbps": "Download speed in Mbit/s",
    "monthly_price_idr": "Monthly price in rupiah",
    "code": "The 6-digit one-time code sent on WhatsApp; staff cs verify without one",
    "scheduled_at": "When the survey takes place: ISO 8601 with its offset, in the future, 90 days ahead at most",
    "surveyor": "Who surveys the address: the surveyor's user name (sub), who alone of the surveyors may read it",
    "feasible": "Whether the address can be connected; a survey not feasible is closed with reject",
    "reason": "Why the registration is rejected or cancelled",
    # Registrations
    "id": "The id (a UUID)",
    "status": "Where the registration stands in the workflow",
    "survey_scheduled_at": "When the survey is scheduled, once it is",
    "survey_feasible": "What the survey found, once completed",
    "survey_notes": "The surveyor's notes",
    "status_reason": "The reason given when it was rejected or cancelled",
    "created_at": "When it was created",
    "updated_at": "When it last changed",
    "history": "Every status change, oldest first",
    "customer": "The customer, once created",
    "ticket": "The installation ticket, once the customer is created",
    "action": "The workflow action",
    "from_status": "The status before (none for the registration itself)",
    "to_status": "The status after",
    "actor": "Who acted: a staff user, the registrant, or the worker",
    "at": "When",
    "erased_at": "When the personal data was erased",
    "items": "The registrations of this page",
    "next_cursor": "Pass as cursor for the next page; null on the last",
    "registration_id": "The registration's id",
    "correlation_id": "Names every log line of the creation, from this request to the worker's",
    "expires_in_s": "Seconds until the code expires",
    "error": "What went wrong",
    "message": "In words, for a person",
    "details": "Machine-readable particulars: problems [{field, problem}] for bad input, current_status and "
    "allowed_actions for a refused action",
    # The parts of GET /registrations/{id}/personal-data
    "registration": "The registration, as stored",
    "messages": "The WhatsApp messages sent to the person for it",
    "erasure": "Who erased the data, when and why, or null",
    "other_registrations": "The same person's other registrations (same phone, or the same e-mail in any case)",
    "template": "The WhatsApp template of the message",
    "recipient": "The phone the message went to (null once erased)",
    "payload": "What was sent (null once erased)",
    "erased_by": "The staff member who erased the data",
}

PARAMETER_DESCRIPTIONS: dict[str, str] = {
    "registration_id": "The registration's id (a UUID); anything else is 404",
    "q": "Search: a phone in any spelling (normalised as on create), an e-mail (whole address, any letter case), "
    "or at least 3 characters of a name (any letter case)",
    "status": "Only registrations in this status",
    "city": "Only this city, in any letter case",
    "created_from": "Created at or after: a date (from its start, WIB, UTC+7) or an ISO 8601 date-time "
    "(WIB when it has no offset)",
    "created_to": "Created before: a date (to its end, WIB, UTC+7) or an ISO 8601 date-time (WIB when it has no "
    "offset)",
    "limit": "Registrations per page",
    "cursor": "next_cursor of the page before",
}

FIELD_DESCRIPTIONS |= {
    "customer_number": "The customer's number, for the phone and the invoice",
    "created_by": "Who created it",
    "ticket_number": "The installation ticket's number",
    "customer_id": "The customer's id",
    "openapi": "The OpenAPI version of this document",
    "info": "The title, version and description",
    "paths": "Every route, by path and method",
}

_REGISTRATION_ID = "0b7d3c52-8f1e-4a6b-9c2d-5e4f3a2b1c0d"
_CUSTOMER_ID = "7e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"
_AT = "2026-11-25T08:00:00+07:00"


def _registration(status: str = "pending_verification") -> dict[str, Any]:
    return {
        "id": _REGISTRATION_ID,
        "status": status,
        "full_name": "Siti Nurhaliza",
        "email": "siti@example.co.id",
        "phone": "+6281234567890",
        "address": "Jl. Merdeka No. 1",
        "city": "Bandung",
        "package_id": _PACKAGE_ID,
        "notes": "after 5 pm, please",
        "survey_scheduled_at": None,
        "surveyor": None,
        "survey_feasible": None,
        "survey_notes": None,
        "status_reason": None,
        "created_at": _AT,
        "updated_at": _AT,
    }


def _customer() -> dict[str, Any]:
    return {
        "id": _CUSTOMER_ID,
        "customer_number": "CUS-0000042",
        "registration_id": _REGISTRATION_ID,
        "full_name": "Siti Nurhaliza",
        "email": "siti@example.co.id",
        "phone": "+6281234567890",
        "address": "Jl. Merdeka No. 1",
        "city": "Bandung",
        "package_id": _PACKAGE_ID,
        "created_by": "worker",
        "created_at": _AT,
    }


def _ticket() -> dict[str, Any]:
    return {
        "id": "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f",
        "ticket_number": "INS-0000042",
        "customer_id": _CUSTOMER_ID,
        "status": "open",
        "scheduled_at": None,
        "created_at": _AT,
        "updated_at": _AT,
    }


_HISTORY = {"action": "verify", "from_status": "pending_verification", "to_status": "verified", "actor": "registrant"}

# One example answer per named schema of the document (a test validates each against its schema).
RESPONSE_EXAMPLES: dict[str, Callable[[], Any]] = {
    "Registration": _registration,
    "HistoryEntry": lambda: {**_HISTORY, "reason": None, "at": _AT},
    "Customer": _customer,
    "Ticket": _ticket,
    "RegistrationDetail": lambda: {
        **_registration("customer_created"),
        "history": [{**_HISTORY, "reason": None, "at": _AT}],
        "customer": _customer(),
        "ticket": _ticket(),
    },
    "RegistrationPage": lambda: {"items": [_registration()], "next_cursor": None},
    "Package": lambda: {"id": _PACKAGE_ID, "name": "Rumah 50 Mbps", "speed_mbps": 50, "monthly_price_idr": 350_000},
    "Queued": lambda: {"status": "queued", "registration_id": _REGISTRATION_ID, "correlation_id": "c0ffee00-1234"},
    "CustomerCreated": lambda: {
        "status": "customer_created",
        "registration_id": _REGISTRATION_ID,
        "customer": _customer(),
        "ticket": _ticket(),
    },
    "Erased": lambda: {"id": _REGISTRATION_ID, "status": "cancelled", "erased_at": _AT},
    "MessageSent": lambda: {
        "id": _PACKAGE_ID,
        "template": "customer_created",
        "recipient": "+6281234567890",
        "status": "sent",
        "payload": {"template": "customer_created"},
        "created_at": _AT,
    },
    "ErasureRecord": lambda: {"erased_by": "admin-1", "erased_at": _AT, "reason": "the person asked"},
    "OtherRegistration": lambda: {"registration": _registration(), "history": [], "messages": []},
    "PersonalData": lambda: {
        "registration": _registration("customer_created"),
        "history": [{**_HISTORY, "reason": None, "at": _AT}],
        "messages": [],
        "customer": _customer(),
        "ticket": _ticket(),
        "erasure": None,
        "other_registrations": [],
    },
    "CodeSent": lambda: {"registration_id": _REGISTRATION_ID, "expires_in_s": 600},
    "OpenApiDocument": lambda: {"openapi": "3.1.0", "info": {"title": "Registration backend"}, "paths": {}},
    "Error": lambda: {"error": {"code": "not_found", "message": "no such registration", "details": {}}},
}

# The details an error example shows, where its code has some.
ERROR_DETAILS: dict[str, dict[str, Any]] = {
    "invalid_input": {"problems": [{"field": "body.phone", "problem": "is not an Indonesian mobile number"}]},
    "transition_not_allowed": {
        "current_status": "verified",
        "allowed_actions": ["schedule-survey", "reject", "cancel"],
    },
    "method_not_allowed": {"allowed_methods": ["GET", "POST"]},
}
