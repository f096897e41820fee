"""SQL for packages, registrations, one-time codes and idempotency keys: bound parameters.

Rows come back as JSON objects built by PostgreSQL (``to_jsonb``), ready for a
response body.  Creating a registration and moving it are one round trip each.
The data-access modules (this one, ``customers.repository``, ``notifications.outbox``) are the
only ones that touch psycopg.
"""

from typing import TYPE_CHECKING, Any
from uuid import UUID

from chalicelib.jsontypes import Json
from chalicelib.statuses import TERMINAL_STATUSES

if TYPE_CHECKING:
    import psycopg

_REGISTRATION = (
    "jsonb_build_object('id', r.id, 'status', r.status, 'full_name', r.full_name, 'email', r.email, "
    "'phone', r.phone, 'address', r.address, 'city', r.city, 'package_id', r.package_id, 'notes', r.notes, "
    "'survey_scheduled_at', r.survey_scheduled_at, 'surveyor', r.surveyor, 'survey_feasible', r.survey_feasible, "
    "'survey_notes', r.survey_notes, 'status_reason', r.status_reason, "
    "'created_at', r.created_at, 'updated_at', r.updated_at)"
)


class DuplicateActiveError(Exception):
    """The unique index on an active registration's phone or e-mail refused the insert."""


def list_packages(conn: "psycopg.Connection[Any]") -> list[Json]:
    rows = conn.execute(
        "SELECT to_jsonb(p) - 'is_active' FROM packages p WHERE is_active ORDER BY monthly_price_idr, name"
    ).fetchall()
    return [row[0] for row in rows]


def insert_package(conn: "psycopg.Connection[Any]", name: str, speed_mbps: int, price_idr: int) -> Json | None:
    """The new package, or None when an active one has that name (in any letter case)."""
    import psycopg

    try:
        row = conn.execute(
            "INSERT INTO packages (name, speed_mbps, monthly_price_idr) VALUES (%s, %s, %s) "
            "RETURNING to_jsonb(packages) - 'is_active'",
            (name, speed_mbps, price_idr),
        ).fetchone()
    except psycopg.errors.UniqueViolation:
        return None
    return row[0] if row else None


_INSERT_REGISTRATION = f"""
WITH package AS (
    SELECT id FROM packages WHERE id = %(package_id)s AND is_active
), r AS (
    INSERT INTO customer_registrations (id, full_name, email, phone, address, city, package_id, notes)
    SELECT %(id)s, %(full_name)s, %(email)s, %(phone)s, %(address)s, %(city)s, package.id, %(notes)s FROM package
    RETURNING *
), history AS (
    INSERT INTO registration_status_history (registration_id, action, from_status, to_status, actor)
    SELECT id, 'register', NULL, status, 'registrant' FROM r
), otp AS (
    INSERT INTO registration_otps (registration_id, code_hash, expires_at)
    SELECT id, %(otp_hash)s, now() + %(otp_valid_for)s FROM r
), outbox AS (
    INSERT INTO notification_outbox (dedupe_key, registration_id, recipient, template, payload, correlation_id)
    SELECT 'otp:' || id || ':1', id, phone, %(otp_template)s, %(otp_payload)s, %(correlation_id)s FROM r
    RETURNING id
)
SELECT {_REGISTRATION}, (SELECT id FROM outbox) FROM r
"""


def insert_registration(conn: "psycopg.Connection[Any]", fields: Json) -> tuple[Json, UUID] | None:
    """The new registration (with its first history row, its one-time code and the code's
    outbox row) and the outbox row's id; None when the package is unknown or retired.

    ``fields`` holds the columns plus ``otp_hash``, ``otp_valid_for``, ``otp_template``
    and ``otp_payload``.  Raises ``DuplicateActiveError`` when an active registration
    has the phone or e-mail (the statement changed nothing then).
    """
    import psycopg
    from psycopg.types.json import Jsonb

    try:
        row = conn.execute(_INSERT_REGISTRATION, {**fields, "otp_payload": Jsonb(fields["otp_payload"])}).fetchone()
    except psycopg.errors.UniqueViolation:
        raise DuplicateActiveError from None
    return (row[0], row[1]) if row else None


def active_status(conn: "psycopg.Connection[Any]", phone: str, email: str) -> str | None:
    """The status of an active registration with this phone or e-mail (any letter case), if any."""
    row = conn.execute(
        "SELECT status FROM customer_registrations WHERE (phone = %s OR lower(email) = lower(%s)) "
        "AND status <> ALL (%s) LIMIT 1",
        (phone, email, [s.value for s in TERMINAL_STATUSES]),
    ).fetchone()
    return row[0] if row else None


def claim_idempotency_key(
    conn: "psycopg.Connection[Any]", scope: str, key: str, request_sha256: str
) -> tuple[str, int, Json] | None:
    """Claim ``key`` for this request inside the caller's transaction: None when it is new.

    Otherwise the first request's (sha256, status, body).  A concurrent request with
    the same key waits on the primary key until the first one commits or rolls back.
    """
    claimed = conn.execute(
        "INSERT INTO idempotency_keys (scope, key, request_sha256, response_status, response_body) "
        "VALUES (%s, %s, %s, 0, '{}') ON CONFLICT DO NOTHING RETURNING 1",
        (scope, key, request_sha256),
    ).fetchone()
    if claimed:
        return None
    row = conn.execute(
        "SELECT request_sha256, response_status, response_body FROM idempotency_keys WHERE scope = %s AND key = %s",
        (scope, key),
    ).fetchone()
    if row is None:  # the conflicting key is committed, so it is visible: this cannot happen
        raise RuntimeError(f"idempotency key {key!r} conflicted but cannot be read")
    return row[0], row[1], row[2]


def store_idempotent_response(conn: "psycopg.Connection[Any]", scope: str, key: str, status: int, body: Json) -> None:
    """Keep the response of the request that claimed ``key``, for replays."""
    from psycopg.types.json import Jsonb

    conn.execute(
        "UPDATE idempotency_keys SET response_status = %s, response_body = %s WHERE scope = %s AND key = %s",
        (status, Jsonb(body), scope, key),
    )


_TRANSITION = f"""
WITH target AS (
    SELECT id, status FROM customer_registrations WHERE id = %(id)s FOR UPDATE
), r AS (
    UPDATE customer_registrations r
       SET status = %(to_status)s,
           updated_at = now(),
           survey_scheduled_at = coalesce(%(survey_scheduled_at)s, r.survey_scheduled_at),
           surveyor = coalesce(%(surveyor)s, r.surveyor),
           survey_feasible = coalesce(%(survey_feasible)s, r.survey_feasible),
           survey_notes = coalesce(%(survey_notes)s, r.survey_notes),
           status_reason = coalesce(%(reason)s, r.status_reason)
      FROM target
     WHERE r.id = target.id
       AND target.status = ANY (%(from_statuses)s)
       AND (NOT %(require_feasible)s OR r.survey_feasible IS TRUE)
    RETURNING r.*, target.status AS from_status
), history AS (
    INSERT INTO registration_status_history (registration_id, action, from_status, to_status, actor, reason)
    SELECT id, %(action)s, from_status, status, %(actor)s, %(reason)s FROM r
)
SELECT (SELECT status FROM target), (SELECT {_REGISTRATION} FROM r)
"""


def transition(conn: "psycopg.Connection[Any]", params: Json) -> tuple[str | None, Json | None]:
    """One conditional UPDATE plus its history row: (status before, the updated row or None).

    (None, None): no such registration.  (status, None): the move is not allowed from it.
    The row lock makes concurrent moves queue; each re-reads the status it waited for.
    """
    row = conn.execute(_TRANSITION, params).fetchone()
    if row is None:  # a SELECT of two scalar subqueries always returns one row
        raise RuntimeError("the transition statement returned no row")
    return row[0], row[1]


def get_registration(conn: "psycopg.Connection[Any]", registration_id: UUID) -> Json | None:
    """The registration with its history (oldest first), its customer and ticket once they exist, or None."""
    row = conn.execute(
        f"""
        SELECT {_REGISTRATION} || jsonb_build_object('history', coalesce((
                   SELECT jsonb_agg(jsonb_build_object('action', h.action, 'from_status', h.from_status,
                          'to_status', h.to_status, 'actor', h.actor, 'reason', h.reason, 'at', h.created_at)
                          ORDER BY h.id)
                     FROM registration_status_history h WHERE h.registration_id = r.id), '[]'::jsonb),
               'customer', (SELECT to_jsonb(c) FROM customers c WHERE c.registration_id = r.id),
               'ticket', (SELECT to_jsonb(t) FROM installation_tickets t
                            JOIN customers c ON c.id = t.customer_id WHERE c.registration_id = r.id))
          FROM customer_registrations r WHERE r.id = %s
        """,
        (registration_id,),
    ).fetchone()
    return row[0] if row else None


_LIST = f"""
SELECT {_REGISTRATION}
  FROM customer_registrations r
 WHERE (%(status)s::text IS NULL OR r.status = %(status)s)
   AND (%(city)s::text IS NULL OR r.city = %(city)s)
   AND (%(created_from)s::timestamptz IS NULL OR r.created_at >= %(created_from)s)
   AND (%(created_to)s::timestamptz IS NULL OR r.created_at < %(created_to)s)
   AND (%(after_created_at)s::timestamptz IS NULL
        OR (r.created_at, r.id) < (%(after_created_at)s, %(after_id)s::uuid))
 ORDER BY r.created_at DESC, r.id DESC
 LIMIT %(limit)s
"""


def list_registrations(conn: "psycopg.Connection[Any]", params: Json) -> list[Json]:
    """Newest first, after the keyset (created_at, id) if given."""
    return [row[0] for row in conn.execute(_LIST, params).fetchall()]


def purge_idempotency_keys(conn: "psycopg.Connection[Any]", kept_for: Any) -> int:
    """Forget keys older than ``kept_for`` (a timedelta); returns how many."""
    return conn.execute("DELETE FROM idempotency_keys WHERE created_at < now() - %s", (kept_for,)).rowcount


def lock_otp(conn: "psycopg.Connection[Any]", registration_id: UUID) -> tuple[bytes, bool, int] | None:
    """Inside the caller's transaction: the code's (hash, expired, failed attempts), row locked; None without one."""
    row = conn.execute(
        "SELECT code_hash, expires_at <= now(), failed_attempts FROM registration_otps "
        "WHERE registration_id = %s FOR UPDATE",
        (registration_id,),
    ).fetchone()
    return (row[0], row[1], row[2]) if row else None


def count_failed_attempt(conn: "psycopg.Connection[Any]", registration_id: UUID) -> int:
    """One more wrong code: the failed attempts so far."""
    row = conn.execute(
        "UPDATE registration_otps SET failed_attempts = failed_attempts + 1 WHERE registration_id = %s "
        "RETURNING failed_attempts",
        (registration_id,),
    ).fetchone()
    return int(row[0]) if row else 0


def delete_otp(conn: "psycopg.Connection[Any]", registration_id: UUID) -> None:
    conn.execute("DELETE FROM registration_otps WHERE registration_id = %s", (registration_id,))


_RESEND_CODE = """
WITH r AS (
    SELECT id, phone, status FROM customer_registrations WHERE id = %(id)s
), previous AS (
    SELECT o.registration_id, o.codes_sent,
           ceil(extract(epoch FROM o.sent_at + %(resend_after)s - now()))::int AS wait_s
      FROM registration_otps o JOIN r ON r.id = o.registration_id
), o AS (
    UPDATE registration_otps o
       SET code_hash = %(otp_hash)s, expires_at = now() + %(otp_valid_for)s, failed_attempts = 0,
           sent_at = now(), codes_sent = o.codes_sent + 1
      FROM r
     WHERE o.registration_id = r.id
       AND r.status = %(pending)s
       AND o.sent_at <= now() - %(resend_after)s
       AND o.codes_sent < %(max_codes)s
    RETURNING o.codes_sent
), outbox AS (
    INSERT INTO notification_outbox (dedupe_key, registration_id, recipient, template, payload, correlation_id)
    SELECT 'otp:' || r.id || ':' || o.codes_sent, r.id, r.phone, %(otp_template)s, %(otp_payload)s,
           %(correlation_id)s
      FROM r, o
    RETURNING id
)
SELECT r.status, (SELECT id FROM outbox), p.codes_sent, p.wait_s
  FROM r LEFT JOIN previous p ON p.registration_id = r.id
"""


ResendOutcome = tuple[str, UUID | None, int | None, int | None]


def resend_code(conn: "psycopg.Connection[Any]", params: Json) -> ResendOutcome | None:
    """Replace the code when allowed, with a new outbox row: (status, outbox id or None,
    codes sent before, seconds until a resend is allowed); None for an unknown registration.
    """
    from psycopg.types.json import Jsonb

    row = conn.execute(_RESEND_CODE, {**params, "otp_payload": Jsonb(params["otp_payload"])}).fetchone()
    return (row[0], row[1], row[2], row[3]) if row else None
