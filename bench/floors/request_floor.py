"""The request floor: the least a framework app does to answer our three measured requests.

``bench/request_cost.py`` calls these beside ``app.app`` with the same events, on the
app's own connection: the same statement (imported from
``chalicelib.registrations.repository``), the same parameters, the same status and
response body.  What a floor does per request: the framework's routing, its event
and response objects, the body read by a plain pydantic model (types only, no checks
of ours), the statement's parameters, the statement, and the body encoded as JSON.
What it leaves out is what our code adds on top: the staff token, our validation
(phone numbers, names, the error envelope), the request log line, the metrics line,
``Cache-Control``.  Two frameworks: Chalice (what the app runs on) and Powertools'
``APIGatewayRestResolver``, for comparison.

``chalice_app(connection)`` and ``powertools_handler(connection)`` take a callable
returning the psycopg connection to use.
"""

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from chalicelib.registrations import otp, repository

Connection = Callable[[], Any]

# The statements' fixed parameters, as the app passes them.
_STALE = {
    "stale_after": timedelta(hours=24),
    "stale_reason": "not verified in time: the phone number and e-mail address are free again",
    "pending": "pending_verification",
    "cancelled": "cancelled",
    "cancel": "cancel",
}


def _schedule_constants() -> dict[str, Any]:
    from chalicelib.workflow import TRANSITION_BY_ACTION, Action

    transition = TRANSITION_BY_ACTION[Action.SCHEDULE_SURVEY]
    return {
        "action": Action.SCHEDULE_SURVEY.value,
        "to_status": transition.target.value,
        "from_statuses": [s.value for s in transition.sources],
    }


_SCHEDULE = _schedule_constants()


class RegistrationBody(BaseModel):
    full_name: str
    email: str
    phone: str
    address: str
    city: str
    package_id: uuid.UUID
    notes: str | None = None


class ScheduleBody(BaseModel):
    scheduled_at: datetime
    surveyor: str


@dataclass(frozen=True)
class Settings:
    """What the app reads from its environment once per container."""

    otp_hash_key: str = field(default_factory=lambda: os.environ["OTP_HASH_KEY"])
    per_client: int = field(default_factory=lambda: int(os.environ.get("OTP_SENDS_PER_CLIENT_PER_HOUR", "5")))
    per_day: int = field(default_factory=lambda: int(os.environ.get("OTP_SENDS_PER_DAY", "10000")))


def _create(conn: Any, settings: Settings, raw: str | bytes, source_ip: str | None, request_id: str | None) -> Any:
    from psycopg.types.json import Jsonb

    body = RegistrationBody.model_validate_json(raw)
    fields = body.model_dump()
    fields["phone"] = "+62" + body.phone[1:]
    registration_id = uuid.uuid4()
    code = otp.new_code()
    budget = otp.SendBudget(source_ip, settings.per_client, settings.per_day)
    params = {
        **fields,
        **budget.params(),
        **_STALE,
        "id": registration_id,
        "otp_hash": otp.code_hash(settings.otp_hash_key, registration_id, code),
        "otp_valid_for": otp.VALID_FOR,
        "otp_template": otp.TEMPLATE,
        "otp_payload": Jsonb(otp.message_payload(code)),
        "correlation_id": request_id,
    }
    return conn.execute(repository._INSERT_REGISTRATION, params).fetchone()[0]


def _schedule(conn: Any, registration_id: str, raw: str | bytes) -> Any:
    body = ScheduleBody.model_validate_json(raw)
    params = {
        **_SCHEDULE,
        "id": uuid.UUID(registration_id),
        "require_feasible": False,
        "actor": "floor",
        "reason": None,
        "survey_scheduled_at": body.scheduled_at.astimezone(UTC),
        "surveyor": body.surveyor,
        "survey_feasible": None,
        "survey_notes": None,
    }
    return conn.execute(repository._TRANSITION, params).fetchone()[2]


_LIST_PARAMS = dict.fromkeys(
    ("status", "city", "created_from", "created_to", "after_created_at", "after_id", "assigned_to")
)


def _list(conn: Any) -> str:
    import base64
    import json

    from psycopg.types.string import TextLoader

    cursor = conn.cursor()
    cursor.adapters.register_loader("jsonb", TextLoader)
    rows = [row[0] for row in cursor.execute(repository._LIST, {**_LIST_PARAMS, "limit": 21}).fetchall()]
    page = rows[:20]
    next_cursor = None
    if len(rows) > 20:
        last = json.loads(page[-1])
        raw = json.dumps([last["created_at"], last["id"]]).encode()
        next_cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return f'{{"items":[{",".join(page)}],"next_cursor":{json.dumps(next_cursor)}}}'


def chalice_app(connection: Connection) -> Any:
    """A Chalice app with the three routes."""
    from chalice.app import Chalice, Response

    floor = Chalice(app_name="request-floor", configure_logs=False)
    settings = Settings()

    @floor.route("/registrations", methods=["POST"])
    def create() -> Response:
        request: Any = floor.current_request
        context = request.context
        source_ip, request_id = context["identity"]["sourceIp"], context["requestId"]
        return Response(_create(connection(), settings, request.raw_body, source_ip, request_id), status_code=201)

    @floor.route("/registrations/{registration_id}/{action}", methods=["POST"])
    def act(registration_id: str, action: str) -> Any:
        request: Any = floor.current_request
        return _schedule(connection(), registration_id, request.raw_body)

    @floor.route("/registrations", methods=["GET"])
    def list_() -> Response:
        return Response(_list(connection()), headers={"Content-Type": "application/json"})

    return floor


def powertools_handler(connection: Connection) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """A Powertools ``APIGatewayRestResolver`` with the three routes; returns the Lambda handler."""
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

    resolver = APIGatewayRestResolver()
    settings = Settings()

    @resolver.post("/registrations")
    def create() -> Response[Any]:
        event = resolver.current_event
        context = event.request_context
        body = _create(connection(), settings, event.body or "", context.identity.source_ip, context.request_id)
        return Response(status_code=201, content_type="application/json", body=body)

    @resolver.post("/registrations/<registration_id>/<action>")
    def act(registration_id: str, action: str) -> Any:
        return _schedule(connection(), registration_id, resolver.current_event.body or "")

    @resolver.get("/registrations")
    def list_() -> Response[str]:
        return Response(status_code=200, content_type="application/json", body=_list(connection()))

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return resolver.resolve(event, context)

    return handler
