"""SQL for personal data: export everything held about a person, erase it, purge what is past its time.

"Erased" (``ERASED``): the name, e-mail, phone and address are replaced, every free
text that may hold them (notes, survey notes, status and history reasons, message
recipients, payloads and errors) is removed, the one-time code and any replayable
response are deleted.  The rows, their ids, statuses and times stay, so counts and
metrics still add up.  Each erasure writes one ``personal_data_erasures`` row.
"""

from typing import TYPE_CHECKING, Any
from uuid import UUID

from chalicelib.jsontypes import Json
from chalicelib.platform.statements import statement
from chalicelib.statuses import TERMINAL_STATUSES, NotificationStatus, RegistrationStatus
from chalicelib.workflow import Action

if TYPE_CHECKING:
    import psycopg

ERASED = "[erased]"
# The phone column must stay E.164 (customer_registrations_phone_e164): a number no one has.
ERASED_PHONE = "+620000000000"

# Everything held about one registration; ``{r}`` is its alias.  A one-time code still
# in an outbox payload is left out (the admin exporting has no need of it).
_DOCUMENT = """jsonb_build_object(
    'registration', to_jsonb({r}),
    'history', (SELECT coalesce(jsonb_agg(jsonb_build_object('action', h.action, 'from_status', h.from_status,
                         'to_status', h.to_status, 'actor', h.actor, 'reason', h.reason, 'at', h.created_at)
                         ORDER BY h.id), '[]'::jsonb)
                  FROM registration_status_history h WHERE h.registration_id = {r}.id),
    'messages', (SELECT coalesce(jsonb_agg(to_jsonb(o) - 'registration_id'
                         || jsonb_build_object('payload', CASE WHEN o.payload -> 'sensitive' = 'true'::jsonb
                                                          THEN o.payload - 'components' ELSE o.payload END)
                         ORDER BY o.created_at, o.id), '[]'::jsonb)
                   FROM notification_outbox o WHERE o.registration_id = {r}.id),
    'customer', (SELECT to_jsonb(c) FROM customers c WHERE c.registration_id = {r}.id),
    'ticket', (SELECT to_jsonb(t) FROM installation_tickets t JOIN customers c ON c.id = t.customer_id
                WHERE c.registration_id = {r}.id),
    'erasure', (SELECT to_jsonb(e) - 'id' - 'registration_id' FROM personal_data_erasures e
                 WHERE e.registration_id = {r}.id))"""

# The same person's other registrations: the same phone, or the same e-mail in any letter
# case (the indexes of migration 010).  An erased registration matches no one.
_EXPORT = statement(f"""
SELECT {_DOCUMENT.format(r="r")} || jsonb_build_object('other_registrations', coalesce((
           SELECT jsonb_agg({_DOCUMENT.format(r="o")} ORDER BY o.created_at, o.id)
             FROM customer_registrations o
            WHERE o.id <> r.id AND (o.phone = r.phone OR lower(o.email) = lower(r.email))
              AND NOT EXISTS (SELECT FROM personal_data_erasures e WHERE e.registration_id IN (r.id, o.id))
       ), '[]'::jsonb))
  FROM customer_registrations r WHERE r.id = %s
""")


def export(conn: "psycopg.Connection[Any]", registration_id: UUID) -> Json | None:
    """Everything held about the registration's person, or None for an unknown registration."""
    row = conn.execute(_EXPORT, (registration_id,)).fetchone()
    return row[0] if row else None


_LOCK = statement("""
SELECT r.status, r.full_name, r.email, r.phone, r.address, e.erased_at
  FROM customer_registrations r LEFT JOIN personal_data_erasures e ON e.registration_id = r.id
 WHERE r.id = %s
   FOR UPDATE OF r
""")


def lock(conn: "psycopg.Connection[Any]", registration_id: UUID) -> tuple[str, list[str], Any] | None:
    """Inside the caller's transaction: (status, [name, e-mail, phone, address], erased_at or None),
    the registration locked; None for an unknown one."""
    row = conn.execute(_LOCK, (registration_id,)).fetchone()
    return (row[0], [row[1], row[2], row[3], row[4]], row[5]) if row else None


# One statement: the registrations in ``ids`` that may be erased (not a customer, not erased
# yet, one of ``statuses``), locked; an active one is cancelled first (with its history row:
# it cannot go on without its data); then every place that holds the person's data.
_ERASE = statement(f"""
WITH target AS (
    SELECT id, status FROM customer_registrations t
     WHERE id = ANY (%(ids)s) AND status = ANY (%(statuses)s) AND status <> %(customer_created)s
       AND NOT EXISTS (SELECT FROM personal_data_erasures e WHERE e.registration_id = t.id)
       FOR UPDATE
), closed AS (
    INSERT INTO registration_status_history (registration_id, action, from_status, to_status, actor)
    SELECT id, %(cancel)s, status, %(cancelled)s, %(actor)s FROM target WHERE status <> ALL (%(terminal)s)
), registration AS (
    UPDATE customer_registrations r
       SET full_name = '{ERASED}', email = '{ERASED}', phone = '{ERASED_PHONE}', address = '{ERASED}',
           notes = NULL, survey_notes = NULL, status_reason = NULL,
           status = CASE WHEN r.status = ANY (%(terminal)s) THEN r.status ELSE %(cancelled)s END,
           updated_at = CASE WHEN r.status = ANY (%(terminal)s) THEN r.updated_at ELSE now() END
      FROM target
     WHERE r.id = target.id
), history AS (
    UPDATE registration_status_history h SET reason = NULL
      FROM target
     WHERE h.registration_id = target.id AND h.reason IS NOT NULL
), outbox AS (
    UPDATE notification_outbox o
       SET recipient = '{ERASED}', payload = '{{}}'::jsonb, last_error = NULL, provider_message_id = NULL,
           status = CASE WHEN o.status = '{NotificationStatus.PENDING.value}'
                         THEN '{NotificationStatus.FAILED.value}' ELSE o.status END
      FROM target
     WHERE o.registration_id = target.id
), otp AS (
    DELETE FROM registration_otps o USING target WHERE o.registration_id = target.id
), replays AS (
    DELETE FROM idempotency_keys k USING target WHERE k.response_body ->> 'id' = target.id::text
), record AS (
    INSERT INTO personal_data_erasures (registration_id, erased_by, reason)
    SELECT id, %(actor)s, %(reason)s FROM target
    RETURNING registration_id
)
SELECT count(*) FROM record
""")


def erase(conn: "psycopg.Connection[Any]", ids: list[UUID], statuses: list[str], actor: str, reason: str) -> int:
    """Erase the registrations of ``ids`` whose status is one of ``statuses`` (never a customer's,
    never twice), recording each; how many were erased."""
    row = conn.execute(
        _ERASE,
        {
            "ids": ids,
            "statuses": statuses,
            "actor": actor,
            "reason": reason,
            "customer_created": RegistrationStatus.CUSTOMER_CREATED.value,
            "cancelled": RegistrationStatus.CANCELLED.value,
            "cancel": Action.CANCEL.value,
            "terminal": [s.value for s in TERMINAL_STATUSES],
        },
    ).fetchone()
    return int(row[0]) if row else 0


_EXPIRED = statement("""
SELECT r.id FROM customer_registrations r
 WHERE r.status = ANY (%(statuses)s) AND r.updated_at < now() - %(kept_for)s::interval
   AND NOT EXISTS (SELECT FROM personal_data_erasures e WHERE e.registration_id = r.id)
 ORDER BY r.updated_at
 LIMIT %(limit)s
""")


def expired(conn: "psycopg.Connection[Any]", statuses: list[str], kept_for: Any, limit: int) -> list[UUID]:
    """Up to ``limit`` registrations in one of ``statuses`` whose last status change is older than
    ``kept_for`` (a timedelta) and that are not erased yet, oldest first."""
    rows = conn.execute(_EXPIRED, {"statuses": statuses, "kept_for": kept_for, "limit": limit}).fetchall()
    return [row[0] for row in rows]


# Rows still to send (or being sent) are left alone: they are minutes old, not months.
_PURGE_OUTBOX = statement(f"""
DELETE FROM notification_outbox WHERE id IN (
    SELECT id FROM notification_outbox
     WHERE created_at < now() - %(kept_for)s::interval
       AND status NOT IN ('{NotificationStatus.PENDING.value}', '{NotificationStatus.SENDING.value}')
     LIMIT %(limit)s
)
""")


def purge_outbox(conn: "psycopg.Connection[Any]", kept_for: Any, limit: int) -> int:
    """Delete up to ``limit`` outbox rows older than ``kept_for`` that are done with; how many."""
    return conn.execute(_PURGE_OUTBOX, {"kept_for": kept_for, "limit": limit}).rowcount
