"""Every status set the code writes to the database: the one source of truth.

The SQL CHECK constraints, partial index predicates and column defaults in
``migrations/`` must agree with these enums; ``chalicelib.schema_contract`` says
where each one is spelled and ``python -m chalicelib.migrate verify`` proves the
live database agrees.  Adding a member here without a migration fails the test
suite (``test_a_status_added_to_the_code_without_a_migration_fails`` in
``tests/integration/test_verify_drift.py``) and the deploy.
"""

from enum import StrEnum


class RegistrationStatus(StrEnum):
    """The life of a registration; see ``chalicelib.workflow`` for the moves."""

    PENDING_VERIFICATION = "pending_verification"
    VERIFIED = "verified"
    SURVEY_SCHEDULED = "survey_scheduled"
    SURVEY_COMPLETED = "survey_completed"
    APPROVED = "approved"
    CUSTOMER_CREATED = "customer_created"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


INITIAL_STATUS = RegistrationStatus.PENDING_VERIFICATION

TERMINAL_STATUSES: frozenset[RegistrationStatus] = frozenset(
    {
        RegistrationStatus.CUSTOMER_CREATED,
        RegistrationStatus.REJECTED,
        RegistrationStatus.CANCELLED,
    }
)

# "Active" is what the uniqueness of phone and e-mail is about: one live
# registration per person, however many finished ones.
ACTIVE_STATUSES: frozenset[RegistrationStatus] = frozenset(RegistrationStatus) - TERMINAL_STATUSES


class TicketStatus(StrEnum):
    """An installation ticket, from creation to the technician's visit."""

    OPEN = "open"
    SCHEDULED = "scheduled"
    DONE = "done"
    CANCELLED = "cancelled"


class NotificationStatus(StrEnum):
    """A row of the notification outbox.

    ``sending`` is claimed by a sender; ``unknown`` is a send whose outcome was
    lost (a timeout), kept apart so that it is never blindly sent twice.
    """

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
