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
