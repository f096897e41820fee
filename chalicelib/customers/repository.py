"""SQL for customers: the create-customer statement and the read behind the API.

The only module of the worker that imports psycopg: its errors are translated
here into ``StatusRejectedError``, so that the service never sees a driver class.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from chalicelib.jsontypes import Json
from chalicelib.platform.statements import statement

if TYPE_CHECKING:
    import psycopg


class StatusRejectedError(Exception):
    """A CHECK constraint refused the write (the incident's failure): nothing was written."""

    def __init__(self, constraint: str | None, table: str | None) -> None:
        super().__init__(f"{table} rejected the write: {constraint} does not allow it")
        self.constraint = constraint
        self.table = table


@dataclass(frozen=True)
class CreateResult:
    """What the statement found and did.

    ``status_before`` is None for an unknown registration; the ids are None unless
    this statement created the customer.
    """

    status_before: str | None
    customer_id: UUID | None = None
    customer_number: str | None = None
    ticket_id: UUID | None = None
    ticket_number: str | None = None
    outbox_id: UUID | None = None


# One statement, so one transaction and one round trip.  ``target`` takes the row
# lock; a concurrent delivery waits on it and then sees the committed row version
# (READ COMMITTED re-reads a locked row), i.e. 'customer_created', and inserts
# nothing.  Every later CTE hangs off ``customer``, which is empty unless the
# status allowed the move.  The UPDATE is where a stale CHECK constraint bites:
# it fails the whole statement, so nothing at all is left behind.
_CREATE_CUSTOMER = statement("""
WITH target AS (
    SELECT id, status, full_name, email, phone, address, city, package_id
      FROM customer_registrations
     WHERE id = %(registration_id)s
       FOR UPDATE
), customer AS (
    INSERT INTO customers (registration_id, full_name, email, phone, address, city, package_id, created_by)
    SELECT id, full_name, email, phone, address, city, package_id, %(actor)s
      FROM target
     WHERE status = ANY (%(from_statuses)s)
    RETURNING id, customer_number, registration_id, full_name, phone
), ticket AS (
    INSERT INTO installation_tickets (customer_id)
    SELECT id FROM customer
    RETURNING id, ticket_number
), registration AS (
    UPDATE customer_registrations r
       SET status = %(to_status)s, updated_at = now()
      FROM customer
     WHERE r.id = customer.registration_id
    RETURNING r.id
), history AS (
    INSERT INTO registration_status_history (registration_id, action, from_status, to_status, actor)
    SELECT target.id, %(action)s, target.status, %(to_status)s, %(actor)s
      FROM target JOIN registration ON registration.id = target.id
), outbox AS (
    INSERT INTO notification_outbox (dedupe_key, registration_id, recipient, template, payload, correlation_id)
    SELECT 'customer_created:' || customer.registration_id, customer.registration_id, customer.phone,
           %(template)s,
           jsonb_build_object(
               'components', jsonb_build_array(jsonb_build_object(
                   'type', 'body',
                   'parameters', jsonb_build_array(
                       jsonb_build_object('type', 'text', 'text', customer.full_name),
                       jsonb_build_object('type', 'text', 'text', customer.customer_number),
                       jsonb_build_object('type', 'text', 'text', ticket.ticket_number))
               )),
               'language', %(language)s::text),
           %(correlation_id)s
      FROM customer CROSS JOIN ticket
    RETURNING id
)
SELECT target.status, customer.id, customer.customer_number, ticket.id, ticket.ticket_number, outbox.id
  FROM (SELECT) AS one
  LEFT JOIN target ON true
  LEFT JOIN customer ON true
  LEFT JOIN ticket ON true
  LEFT JOIN outbox ON true
""")


def create_customer(conn: "psycopg.Connection[Any]", params: Json) -> CreateResult:
    """Run the create-customer statement on an autocommit connection.

    ``params``: registration_id, actor, from_statuses, to_status, action, and the
    outbox row's template, language and correlation_id.  Raises
    ``StatusRejectedError`` when a CHECK constraint refuses a row (the statement
    rolled back); other database errors (connection lost, a unique index) propagate.
    """
    import psycopg

    try:
        row = conn.execute(_CREATE_CUSTOMER, params).fetchone()
    except psycopg.errors.CheckViolation as error:
        raise StatusRejectedError(error.diag.constraint_name, error.diag.table_name) from error
    if row is None:  # the statement always returns one row
        raise RuntimeError("the create-customer statement returned no row")
    return CreateResult(*row)


_READ_CUSTOMER = statement("""
SELECT r.status, to_jsonb(c), to_jsonb(t), r.survey_feasible
  FROM customer_registrations r
  LEFT JOIN customers c ON c.registration_id = r.id
  LEFT JOIN installation_tickets t ON t.customer_id = c.id
 WHERE r.id = %s
""")


def read_customer(
    conn: "psycopg.Connection[Any]", registration_id: UUID
) -> tuple[str, Json | None, Json | None, bool | None] | None:
    """(status, customer, ticket, survey_feasible) of a registration, customer and ticket None until
    created; None if unknown."""
    row = conn.execute(_READ_CUSTOMER, (registration_id,)).fetchone()
    return (row[0], row[1], row[2], row[3]) if row else None
