"""SQL for packages, registrations, one-time codes and idempotency keys: bound parameters.

Rows come back as JSON objects built by PostgreSQL (``to_jsonb``), ready for a
response body.  Creating a registration and moving it are one round trip each.
The data-access modules (this one, ``customers.repository``, ``notifications.outbox``) are the
only ones that touch psycopg.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from chalicelib.jsontypes import Json
from chalicelib.platform.statements import statement
from chalicelib.statuses import TERMINAL_STATUSES, RegistrationStatus
from chalicelib.workflow import Action

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


_LIST_PACKAGES = statement(
    "SELECT to_jsonb(p) - 'is_active' FROM packages p WHERE is_active ORDER BY monthly_price_idr, name"
)
_INSERT_PACKAGE = statement(
    "INSERT INTO packages (name, speed_mbps, monthly_price_idr) VALUES (%s, %s, %s) "
    "RETURNING to_jsonb(packages) - 'is_active'"
)


def list_packages(conn: "psycopg.Connection[Any]") -> list[Json]:
    rows = conn.execute(_LIST_PACKAGES).fetchall()
    return [row[0] for row in rows]


def insert_package(conn: "psycopg.Connection[Any]", name: str, speed_mbps: int, price_idr: int) -> Json | None:
    """The new package, or None when an active one has that name (in any letter case)."""
    import psycopg

    try:
        row = conn.execute(_INSERT_PACKAGE, (name, speed_mbps, price_idr)).fetchone()
    except psycopg.errors.UniqueViolation:
        return None
    return row[0] if row else None


# Counting one code against its client's hourly budget and everyone's daily one, in
# the statement that creates the code: ``budget`` has a row only when both allowed
# it.  ON CONFLICT DO UPDATE re-reads a counter row another request just changed, so
# concurrent requests at the limit are let through one by one, never one too many.
_COUNT_SEND = """
client_sends AS (
    INSERT INTO otp_send_counts AS c (bucket, window_start, sends)
    SELECT %(client_bucket)s, date_trunc('hour', now()), 1 FROM {source}
    ON CONFLICT (bucket, window_start) DO UPDATE SET sends = c.sends + 1 WHERE c.sends < %(per_client)s
    RETURNING sends
), budget AS (
    INSERT INTO otp_send_counts AS c (bucket, window_start, sends)
    SELECT 'all', date_trunc('day', now(), 'UTC'), 1 FROM client_sends
    ON CONFLICT (bucket, window_start) DO UPDATE SET sends = c.sends + 1 WHERE c.sends < %(per_day)s
    RETURNING sends
)"""
# (sent today, client refused, seconds to the client's next hour, to the next UTC day)
_BUDGET_OUTCOME = """(SELECT sends FROM budget), NOT EXISTS (SELECT FROM client_sends),
       ceil(extract(epoch FROM date_trunc('hour', now()) + interval '1 hour' - now()))::int,
       ceil(extract(epoch FROM date_trunc('day', now(), 'UTC') + interval '1 day' - now()))::int"""

_INSERT_REGISTRATION = statement(f"""
WITH package AS (
    SELECT id FROM packages WHERE id = %(package_id)s AND is_active
), {_COUNT_SEND.format(source="package")}, stale AS (
    -- Never verified in time: no longer holds the phone or e-mail (squatting).
    UPDATE customer_registrations s
       SET status = %(cancelled)s, status_reason = %(stale_reason)s, updated_at = now()
     WHERE (s.phone = %(phone)s OR lower(s.email) = lower(%(email)s))
       AND s.status = %(pending)s AND s.created_at <= now() - %(stale_after)s::interval
       AND EXISTS (SELECT FROM budget)
    RETURNING s.id
), stale_history AS (
    INSERT INTO registration_status_history (registration_id, action, from_status, to_status, actor, reason)
    SELECT id, %(cancel)s, %(pending)s, %(cancelled)s, 'system', %(stale_reason)s FROM stale
), r AS (
    INSERT INTO customer_registrations (id, full_name, email, phone, address, city, package_id, notes)
    SELECT %(id)s, %(full_name)s, %(email)s, %(phone)s, %(address)s, %(city)s, package.id, %(notes)s
      FROM package, budget
     WHERE (SELECT count(*) FROM stale) >= 0  -- after the stale ones have let go of the phone and e-mail
    RETURNING *
), history AS (
    INSERT INTO registration_status_history (registration_id, action, from_status, to_status, actor)
    SELECT id, 'register', NULL, status, 'registrant' FROM r
), otp AS (
    INSERT INTO registration_otps (registration_id, code_hash, expires_at)
    SELECT id, %(otp_hash)s, now() + %(otp_valid_for)s FROM r
), outbox AS (
    INSERT INTO notification_outbox (dedupe_key, registration_id, recipient, template, payload, correlation_id)
    SELECT 'otp:' || id || ':1', id, phone, %(otp_template)s,
           %(otp_payload)s || jsonb_build_object('valid_until', now() + %(otp_valid_for)s), %(correlation_id)s FROM r
    RETURNING id
)
SELECT (SELECT {_REGISTRATION} FROM r), (SELECT id FROM outbox), EXISTS (SELECT FROM package),
       {_BUDGET_OUTCOME}
""")


@dataclass(frozen=True)
class SendCount:
    """What the OTP budgets said: codes sent today (None: refused), and when to try again."""

    sent_today: int | None
    client_refused: bool
    client_wait_s: int
    day_wait_s: int


def insert_registration(
    conn: "psycopg.Connection[Any]", fields: Json
) -> tuple[Json | None, UUID | None, bool, SendCount]:
    """(the new registration, its code's outbox row id, whether the package exists, the budgets' answer).

    One statement: the code counted against the budgets, stale registrations with the
    phone or e-mail cancelled (with their history rows), the registration with its
    first history row, its one-time code and the code's outbox row.  Nothing is
    created when the package is unknown or retired, or a budget refuses.  ``fields``
    holds the columns plus ``otp_*``, ``client_bucket``, ``per_client``, ``per_day``,
    ``stale_after`` and ``stale_reason``.  Raises ``DuplicateActiveError`` when an
    active registration has the phone or e-mail (the statement changed nothing then).
    """
    import psycopg
    from psycopg.types.json import Jsonb

    params = {
        **fields,
        "otp_payload": Jsonb(fields["otp_payload"]),
        "pending": RegistrationStatus.PENDING_VERIFICATION.value,
        "cancelled": RegistrationStatus.CANCELLED.value,
        "cancel": Action.CANCEL.value,
    }
    try:
        row = conn.execute(_INSERT_REGISTRATION, params).fetchone()
    except psycopg.errors.UniqueViolation:
        raise DuplicateActiveError from None
    if row is None:
        raise RuntimeError("the registration statement returned no row")
    return row[0], row[1], row[2], SendCount(*row[3:7])


_EXPIRE_UNVERIFIED = statement("""
WITH stale AS (
    UPDATE customer_registrations
       SET status = %(cancelled)s, status_reason = %(reason)s, updated_at = now()
     WHERE status = %(pending)s AND created_at <= now() - %(stale_after)s::interval
    RETURNING id
), history AS (
    INSERT INTO registration_status_history (registration_id, action, from_status, to_status, actor, reason)
    SELECT id, %(cancel)s, %(pending)s, %(cancelled)s, 'system', %(reason)s FROM stale
)
SELECT count(*) FROM stale
""")


def expire_unverified(conn: "psycopg.Connection[Any]", stale_after: Any, reason: str) -> int:
    """Cancel every registration pending verification for ``stale_after`` or longer, with history rows; how many."""
    params = {
        "stale_after": stale_after,
        "reason": reason,
        "pending": RegistrationStatus.PENDING_VERIFICATION.value,
        "cancelled": RegistrationStatus.CANCELLED.value,
        "cancel": Action.CANCEL.value,
    }
    row = conn.execute(_EXPIRE_UNVERIFIED, params).fetchone()
    return int(row[0]) if row else 0


_FORGET_SEND_COUNTS = statement("DELETE FROM otp_send_counts WHERE window_start < now() - %s::interval")


def forget_send_counts(conn: "psycopg.Connection[Any]", kept_for: Any) -> int:
    """Delete OTP send counters of windows that started more than ``kept_for`` ago; how many."""
    return conn.execute(_FORGET_SEND_COUNTS, (kept_for,)).rowcount


_TELL_OWNERS = statement("""
WITH existing AS (
    SELECT id, phone, status FROM customer_registrations
     WHERE (phone = %(phone)s OR lower(email) = lower(%(email)s)) AND status <> ALL (%(terminal)s)
)
INSERT INTO notification_outbox (dedupe_key, registration_id, recipient, template, payload)
SELECT %(template)s || ':' || e.id || ':' || floor(extract(epoch FROM now()) / %(every_s)s)::bigint,
       e.id, e.phone, %(template)s,
       jsonb_build_object('language', 'id', 'components', jsonb_build_array(jsonb_build_object(
           'type', 'body', 'parameters', jsonb_build_array(
               jsonb_build_object('type', 'text', 'text', e.id::text),
               jsonb_build_object('type', 'text', 'text', e.status),
               -- As of when: two messages of the same status in two periods are two different messages.
               jsonb_build_object('type', 'text', 'text',
                   to_char(now() AT TIME ZONE 'Asia/Jakarta', 'YYYY-MM-DD HH24:MI') || ' WIB')))))
  FROM existing e
 WHERE (SELECT count(*) FROM notification_outbox o
         WHERE o.registration_id = e.id AND o.template = %(template)s) < %(at_most)s
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id
""")


def tell_owners(
    conn: "psycopg.Connection[Any]", phone: str, email: str, template: str, every: Any, at_most: int
) -> list[UUID]:
    """An outbox row to the phone of each active registration with this phone or e-mail (any letter
    case), with its id, its status and the time (WIB): at most one per ``every`` (a timedelta) and
    ``at_most`` in all per registration.  The ids of the rows written."""
    rows = conn.execute(
        _TELL_OWNERS,
        {
            "phone": phone,
            "email": email,
            "terminal": [s.value for s in TERMINAL_STATUSES],
            "template": template,
            "every_s": every.total_seconds(),
            "at_most": at_most,
        },
    ).fetchall()
    return [UUID(str(row[0])) for row in rows]


_CLAIM_KEY = statement(
    "INSERT INTO idempotency_keys (scope, key, request_sha256, response_status, response_body) "
    "VALUES (%s, %s, %s, 0, '{}') ON CONFLICT DO NOTHING RETURNING 1"
)
_READ_KEY = statement(
    "SELECT request_sha256, response_status, response_body FROM idempotency_keys WHERE scope = %s AND key = %s"
)
_STORE_RESPONSE = statement(
    "UPDATE idempotency_keys SET response_status = %s, response_body = %s WHERE scope = %s AND key = %s"
)


def claim_idempotency_key(
    conn: "psycopg.Connection[Any]", scope: str, key: str, request_sha256: str
) -> tuple[str, int, Json] | None:
    """Claim ``key`` for this request inside the caller's transaction: None when it is new.

    Otherwise the first request's (sha256, status, body).  A concurrent request with
    the same key waits on the primary key until the first one commits or rolls back.
    """
    claimed = conn.execute(_CLAIM_KEY, (scope, key, request_sha256)).fetchone()
    if claimed:
        return None
    row = conn.execute(_READ_KEY, (scope, key)).fetchone()
    if row is None:  # the conflicting key is committed, so it is visible: this cannot happen
        raise RuntimeError(f"idempotency key {key!r} conflicted but cannot be read")
    return row[0], row[1], row[2]


def store_idempotent_response(conn: "psycopg.Connection[Any]", scope: str, key: str, status: int, body: Json) -> None:
    """Keep the response of the request that claimed ``key``, for replays."""
    from psycopg.types.json import Jsonb

    conn.execute(_STORE_RESPONSE, (status, Jsonb(body), scope, key))


_TRANSITION = statement(f"""
WITH target AS (
    SELECT id, status, survey_feasible FROM customer_registrations WHERE id = %(id)s FOR UPDATE
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
       -- workflow.permits: the status is a source, and the survey was feasible where that is required.
       AND target.status = ANY (%(from_statuses)s)
       AND (NOT %(require_feasible)s OR target.survey_feasible IS TRUE)
    RETURNING r.*, target.status AS from_status
), history AS (
    INSERT INTO registration_status_history (registration_id, action, from_status, to_status, actor, reason)
    SELECT id, %(action)s, from_status, status, %(actor)s, %(reason)s FROM r
)
SELECT (SELECT status FROM target), (SELECT survey_feasible FROM target), (SELECT {_REGISTRATION} FROM r)
""")


def transition(conn: "psycopg.Connection[Any]", params: Json) -> tuple[str | None, bool | None, Json | None]:
    """One conditional UPDATE plus its history row: (status before, survey_feasible before, the updated
    row or None).

    (None, None, None): no such registration.  (status, feasible, None): the move is not allowed from it.
    The row lock makes concurrent moves queue; each re-reads the status it waited for.
    """
    row = conn.execute(_TRANSITION, params).fetchone()
    if row is None:  # a SELECT of scalar subqueries always returns one row
        raise RuntimeError("the transition statement returned no row")
    return row[0], row[1], row[2]


_GET_REGISTRATION = statement(f"""
SELECT {_REGISTRATION} || jsonb_build_object('history', coalesce((
           SELECT jsonb_agg(jsonb_build_object('action', h.action, 'from_status', h.from_status,
                  'to_status', h.to_status, 'actor', h.actor, 'reason', h.reason, 'at', h.created_at)
                  ORDER BY h.id)
             FROM registration_status_history h WHERE h.registration_id = r.id), '[]'::jsonb),
       'customer', (SELECT to_jsonb(c) FROM customers c WHERE c.registration_id = r.id),
       'ticket', (SELECT to_jsonb(t) FROM installation_tickets t
                    JOIN customers c ON c.id = t.customer_id WHERE c.registration_id = r.id))
  FROM customer_registrations r
 WHERE r.id = %(id)s AND (%(assigned_to)s::text IS NULL OR r.surveyor = %(assigned_to)s)
""")


def get_registration(
    conn: "psycopg.Connection[Any]", registration_id: UUID, assigned_to: str | None = None
) -> Json | None:
    """The registration with its history (oldest first), its customer and ticket once they exist, or None
    (also when ``assigned_to`` is given and the registration's survey is not assigned to them)."""
    row = conn.execute(_GET_REGISTRATION, {"id": registration_id, "assigned_to": assigned_to}).fetchone()
    return row[0] if row else None


_LIST_TEMPLATE = """
SELECT {registration}, r.id::text
  FROM customer_registrations r
 WHERE {match}
   -- A surveyor sees only the registrations whose survey is assigned to them (NULL: everyone's).
   AND (%(assigned_to)s::text IS NULL OR r.surveyor = %(assigned_to)s)
   AND (%(status)s::text IS NULL OR r.status = %(status)s)
   AND (%(city)s::text IS NULL OR lower(r.city) = lower(%(city)s))
   AND (%(created_from)s::timestamptz IS NULL OR r.created_at >= %(created_from)s)
   AND (%(created_to)s::timestamptz IS NULL OR r.created_at < %(created_to)s)
   AND (%(after_created_at)s::timestamptz IS NULL
        OR (r.created_at, r.id) < (%(after_created_at)s, %(after_id)s::uuid))
 ORDER BY r.created_at DESC, r.id DESC
 LIMIT %(limit)s
"""
# One statement per kind of search, each with a condition its own index serves (migration 010),
# rather than "%(q)s IS NULL OR ...", which a generic plan could not use an index for.
_MATCH_BY_SEARCH = {
    None: "TRUE",
    "phone": "r.phone = %(q)s",
    "email": "lower(r.email) = lower(%(q)s)",
    "name": "r.full_name ILIKE %(q)s",
}
_LIST_BY_SEARCH = {
    kind: statement(_LIST_TEMPLATE.format(registration=_REGISTRATION, match=match))
    for kind, match in _MATCH_BY_SEARCH.items()
}
_LIST = _LIST_BY_SEARCH[None]


def list_registrations(
    conn: "psycopg.Connection[Any]", params: Json, search: str | None = None
) -> list[tuple[str, str]]:
    """Newest first, after the keyset (created_at, id) if given: each row as the JSON text PostgreSQL built,
    with its id.  ``search`` (phone, email, name) says what ``params["q"]`` is; ``params["assigned_to"]``
    (or None) keeps a surveyor's own.

    Not decoded: the API passes the rows on as they are, and decoding twenty of them
    only to encode them again was a fifth of a list request's own cost.
    """
    from psycopg.types.string import TextLoader

    cursor = conn.cursor()
    cursor.adapters.register_loader("jsonb", TextLoader)
    return cursor.execute(_LIST_BY_SEARCH[search], params).fetchall()


# ::interval: PREPARE (and verify) cannot know the parameter is a timedelta otherwise.
_PURGE_KEYS = statement("DELETE FROM idempotency_keys WHERE created_at < now() - %s::interval")
_LOCK_OTP = statement(
    "SELECT code_hash, expires_at <= now(), failed_attempts FROM registration_otps "
    "WHERE registration_id = %s FOR UPDATE"
)
_COUNT_FAILED_ATTEMPT = statement(
    "UPDATE registration_otps SET failed_attempts = failed_attempts + 1 WHERE registration_id = %s "
    "RETURNING failed_attempts"
)
_DELETE_OTP = statement("DELETE FROM registration_otps WHERE registration_id = %s")


def purge_idempotency_keys(conn: "psycopg.Connection[Any]", kept_for: Any) -> int:
    """Forget keys older than ``kept_for`` (a timedelta); returns how many."""
    return conn.execute(_PURGE_KEYS, (kept_for,)).rowcount


def lock_otp(conn: "psycopg.Connection[Any]", registration_id: UUID) -> tuple[bytes, bool, int] | None:
    """Inside the caller's transaction: the code's (hash, expired, failed attempts), row locked; None without one."""
    row = conn.execute(_LOCK_OTP, (registration_id,)).fetchone()
    return (row[0], row[1], row[2]) if row else None


def count_failed_attempt(conn: "psycopg.Connection[Any]", registration_id: UUID) -> int:
    """One more wrong code: the failed attempts so far."""
    row = conn.execute(_COUNT_FAILED_ATTEMPT, (registration_id,)).fetchone()
    return int(row[0]) if row else 0


def delete_otp(conn: "psycopg.Connection[Any]", registration_id: UUID) -> None:
    conn.execute(_DELETE_OTP, (registration_id,))


_RESEND_CODE = statement(f"""
WITH r AS (
    SELECT id, phone, status FROM customer_registrations WHERE id = %(id)s
), previous AS (
    SELECT o.registration_id, o.codes_sent,
           ceil(extract(epoch FROM o.sent_at + %(resend_after)s - now()))::int AS wait_s
      FROM registration_otps o JOIN r ON r.id = o.registration_id
), eligible AS (
    SELECT p.registration_id FROM previous p JOIN r ON r.id = p.registration_id
     WHERE r.status = %(pending)s AND p.wait_s <= 0 AND p.codes_sent < %(max_codes)s
), {_COUNT_SEND.format(source="eligible")}, o AS (
    UPDATE registration_otps o
       SET code_hash = %(otp_hash)s, expires_at = now() + %(otp_valid_for)s, failed_attempts = 0,
           sent_at = now(), codes_sent = o.codes_sent + 1
      FROM r
     WHERE o.registration_id = r.id
       AND r.status = %(pending)s
       AND o.sent_at <= now() - %(resend_after)s
       AND o.codes_sent < %(max_codes)s
       AND EXISTS (SELECT FROM budget)
    RETURNING o.codes_sent
), outbox AS (
    INSERT INTO notification_outbox (dedupe_key, registration_id, recipient, template, payload, correlation_id)
    SELECT 'otp:' || r.id || ':' || o.codes_sent, r.id, r.phone, %(otp_template)s,
           %(otp_payload)s || jsonb_build_object('valid_until', now() + %(otp_valid_for)s), %(correlation_id)s
      FROM r, o
    RETURNING id
)
SELECT r.status, (SELECT id FROM outbox), p.codes_sent, p.wait_s, EXISTS (SELECT FROM eligible),
       {_BUDGET_OUTCOME}
  FROM r LEFT JOIN previous p ON p.registration_id = r.id
""")


ResendOutcome = tuple[str, UUID | None, int | None, int | None, bool, SendCount]


def resend_code(conn: "psycopg.Connection[Any]", params: Json) -> ResendOutcome | None:
    """Replace the code when allowed and the budgets let one more go, with a new outbox row:
    (status, outbox id or None, codes sent before, seconds until a resend is allowed, whether
    it was otherwise allowed, the budgets' answer); None for an unknown registration.
    """
    from psycopg.types.json import Jsonb

    row = conn.execute(_RESEND_CODE, {**params, "otp_payload": Jsonb(params["otp_payload"])}).fetchone()
    return (row[0], row[1], row[2], row[3], row[4], SendCount(*row[5:9])) if row else None
