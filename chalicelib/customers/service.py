"""Create Customer: the API queues the request, the SQS worker carries it out exactly once.

The worker's whole unit of work is one SQL statement (``customers.repository``);
delivery is at least once, so a repeated or concurrent message must find the
customer already there and create nothing.
"""

import json
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from chalicelib.customers import repository as customer_repository
from chalicelib.customers.messages import BadMessageError, CreateCustomer
from chalicelib.errors import NotFoundError
from chalicelib.jsontypes import Json
from chalicelib.message_templates import CUSTOMER_CREATED
from chalicelib.platform import emf, logs, sqs
from chalicelib.platform.database import Database
from chalicelib.platform.settings import ConfigurationError
from chalicelib.staff import Role, Staff, require
from chalicelib.statuses import TERMINAL_STATUSES, RegistrationStatus
from chalicelib.workflow import TRANSITION_BY_ACTION, Action, not_allowed
from chalicelib.workflow import parse_registration_id as parse_id

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)
Notify = Callable[[list[uuid.UUID]], None]

FAILED = "WorkerRecordFailed"


class Failure(StrEnum):
    """Why a record is left for retry: the breakdown of the ``WorkerRecordFailed`` metric."""

    BAD_BODY = "bad_body"
    UNKNOWN_REGISTRATION = "unknown_registration"
    DATABASE = "database"
    CONSTRAINT = "constraint"
    STATUS = "status"  # not approved yet (nor closed): it may be, by the next receive


# Who may ask for a customer (admin may do what any staff may: ``Staff.may``).
REQUESTERS = frozenset({Role.APPROVER})
_CREATE = TRANSITION_BY_ACTION[Action.CREATE_CUSTOMER]
# Closed before the message arrived: there is nothing to do, now or on a retry.
_CLOSED = TERMINAL_STATUSES - {_CREATE.target}


@dataclass(frozen=True)
class CustomerRequest:
    """The API's answer: ``queued`` (202) or the customer that already exists (200)."""

    queued: bool
    body: Json


def request_customer(
    conn: "psycopg.Connection[Any]", registration_id: str, staff: Staff, queue: Callable[[], Any], queue_url: str | None
) -> CustomerRequest:
    """Queue a ``create_customer`` message for an approved registration; changes no row.

    ``queue`` gives the SQS client, created only when a message is sent.
    Returns the existing customer and ticket when it is already ``customer_created``.
    Raises ``ForbiddenError`` unless ``staff`` is an approver, ``NotFoundError``,
    ``TransitionNotAllowedError`` (409) from any other status, and
    ``ServiceUnavailableError`` (503) when SQS cannot take the message.
    """
    require(staff, REQUESTERS)
    registration = parse_id(registration_id)
    found = customer_repository.read_customer(conn, registration)
    if found is None:
        raise NotFoundError("no such registration")
    status, customer, ticket, feasible = RegistrationStatus(found[0]), found[1], found[2], found[3]
    if status is _CREATE.target and customer is not None:
        body = {"status": status.value, "registration_id": str(registration), "customer": customer, "ticket": ticket}
        return CustomerRequest(queued=False, body=body)
    if status not in _CREATE.sources:
        raise not_allowed(_CREATE.action, status, feasible)
    if not queue_url:
        raise ConfigurationError("CUSTOMER_QUEUE_URL is not set")
    # The request's id travels with the message (an attribute: the body is pinned).
    correlation_id = logs.correlation_id() or str(uuid.uuid4())
    message = CreateCustomer.new(registration, staff.username)
    sqs.send(queue(), queue_url, message.to_body(), {"correlation_id": correlation_id})
    log.info("create-customer queued: registration %s, correlation %s", registration, correlation_id)
    return CustomerRequest(
        queued=True,
        body={"status": "queued", "registration_id": str(registration), "correlation_id": correlation_id},
    )


def create_customers(database: Database, records: Iterable[Json], notify: Notify) -> Json:
    """Handle one SQS batch: each record on its own, one statement each.

    Returns the partial batch response, ``{"batchItemFailures": [...]}``, naming
    exactly the records to deliver again (bad body, unknown registration, wrong
    status, database error).  Then calls ``notify`` with the new outbox row ids; a
    failing ``notify`` is logged and never fails a record (the customer is committed,
    the outbox row waits for the scheduled sender).
    """
    failed: list[str] = []
    outbox_ids: list[uuid.UUID] = []
    correlation_ids: list[str] = []
    for record in records:
        message_id = str(record.get("messageId", ""))
        correlation_id = _correlation_id(record)
        correlation_ids += [correlation_id] if correlation_id else []
        with logs.correlated(correlation_id):
            ok, outbox_id = _create_one(database, message_id, record.get("body"))
        if not ok:
            failed.append(message_id)
        if outbox_id is not None:
            outbox_ids.append(outbox_id)
    # The batch's metrics line names the requests it carried out.
    emf.set_property("correlation_id", correlation_ids[0] if len(correlation_ids) == 1 else correlation_ids or None)
    if outbox_ids:
        _notify(notify, outbox_ids)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


def _create_one(database: Database, message_id: str, body: Any) -> tuple[bool, uuid.UUID | None]:
    """(acknowledge?, the new outbox row id); logs one line per record, saying which outcome.

    Counts ``CustomerCreated``, or ``WorkerRecordFailed`` by reason, on the invocation's metrics.
    """
    try:
        message = CreateCustomer.parse(body if isinstance(body, str) else None)
    except BadMessageError as error:
        log.error(
            "create-customer %s (registration %s) failed: bad body %s", message_id, _claimed_id(body), error.problems
        )
        emf.count(FAILED, by=Failure.BAD_BODY)
        return False, None
    registration = message.registration_id
    params = {
        "registration_id": registration,
        "actor": message.requested_by,
        "from_statuses": [s.value for s in _CREATE.sources],
        "to_status": _CREATE.target.value,
        "action": _CREATE.action.value,
        "template": CUSTOMER_CREATED.name,
        "language": CUSTOMER_CREATED.language,
        "correlation_id": logs.correlation_id(),
    }
    try:
        result = database.run(lambda conn: customer_repository.create_customer(conn, params))
    except customer_repository.StatusRejectedError as error:
        log.error(
            "create-customer %s (registration %s) failed: %s rejects status %r: constraint %s does not allow it; "
            "nothing was written, the message stays for retry (run `python -m chalicelib.migrate verify`)",
            message_id, registration, error.table, _CREATE.target.value, error.constraint,
        )  # fmt: skip
        emf.count(FAILED, by=Failure.CONSTRAINT)
        return False, None
    except Exception as error:
        # Any other failure (connection lost, a unique index) is this record's alone:
        # the rest of the batch goes on.  The driver's message may quote row values
        # (phone, e-mail), so only its class and SQLSTATE are logged.
        log.error(
            "create-customer %s (registration %s) failed: database error %s (sqlstate %s)",
            message_id, registration, type(error).__name__, getattr(error, "sqlstate", None),
        )  # fmt: skip
        emf.count(FAILED, by=Failure.DATABASE)
        return False, None
    return _outcome(message_id, registration, result)


def _outcome(
    message_id: str, registration: uuid.UUID, result: customer_repository.CreateResult
) -> tuple[bool, uuid.UUID | None]:
    status = None if result.status_before is None else RegistrationStatus(result.status_before)
    if result.outbox_id is not None:
        log.info(
            "create-customer %s: registration %s is customer %s (%s), ticket %s",
            message_id, registration, result.customer_id, result.customer_number, result.ticket_number,
        )  # fmt: skip
        emf.count("CustomerCreated")
        return True, result.outbox_id
    if status is _CREATE.target:
        log.info("create-customer %s: registration %s already has its customer; acknowledged", message_id, registration)
        return True, None
    if status in _CLOSED:
        log.warning(
            "create-customer %s: registration %s is %s; nothing created, acknowledged", message_id, registration, status
        )
        return True, None
    reason = (
        "unknown registration"
        if status is None
        else f"status is {status}, create-customer needs {', '.join(sorted(_CREATE.sources))}"
    )
    log.error("create-customer %s (registration %s) failed: %s", message_id, registration, reason)
    emf.count(FAILED, by=Failure.UNKNOWN_REGISTRATION if status is None else Failure.STATUS)
    return False, None


def _notify(notify: Notify, outbox_ids: list[uuid.UUID]) -> None:
    try:
        notify(outbox_ids)
    except Exception as error:
        # The customers are committed; their outbox rows stay pending for the scheduled sender.
        log.warning("notify failed for outbox rows %s: %s; they wait for the sender", outbox_ids, type(error).__name__)


def _correlation_id(record: Json) -> str | None:
    """The ``correlation_id`` message attribute: the id of the API request that queued the message."""
    attribute = (record.get("messageAttributes") or {}).get("correlation_id") or {}
    value = attribute.get("stringValue") if isinstance(attribute, dict) else None
    return str(value)[:128] if value else None


def _claimed_id(body: Any) -> str | None:
    """The registration id a malformed body claims, for the log line only."""
    try:
        claimed = json.loads(body)["registration_id"]
    except (TypeError, ValueError, KeyError, IndexError):
        return None
    return str(claimed)[:64]
