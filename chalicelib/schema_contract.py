"""What the code expects of the live schema, as data the verifier reads.

Each ``EnumColumn`` says: this column holds members of this enum, guarded by this
CHECK constraint, with this default, and these partial indexes' predicates select
exactly these members.  The next enum-guarded column is one more line in
``CONTRACT``.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from chalicelib.statuses import (
    ACTIVE_STATUSES,
    INITIAL_STATUS,
    NotificationStatus,
    RegistrationStatus,
    TicketStatus,
)


@dataclass(frozen=True)
class IndexPredicate:
    """A partial index whose ``WHERE`` clause must select exactly ``selects``."""

    name: str
    selects: frozenset[str]


@dataclass(frozen=True)
class EnumColumn:
    """A text column whose values are exactly ``enum``'s, guarded by ``constraint``."""

    table: str
    column: str
    enum: type[StrEnum]
    constraint: str
    default: str | None = None
    indexes: tuple[IndexPredicate, ...] = field(default=())

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(member.value for member in self.enum)

    def check_sql(self) -> str:
        """The CHECK expression the code expects, in the enum's order."""
        return f"{self.column} IN ({_quote_list(self.values)})"

    def predicate_sql(self, selects: Iterable[str]) -> str:
        """A partial index predicate selecting exactly ``selects``."""
        ordered = [value for value in self.values if value in set(selects)]
        return f"{self.column} IN ({_quote_list(ordered)})"


def _quote_list(values: Iterable[str]) -> str:
    return ", ".join("'" + value.replace("'", "''") + "'" for value in values)


def _active(enum_values: Iterable[StrEnum]) -> frozenset[str]:
    return frozenset(value.value for value in enum_values)


CONTRACT: tuple[EnumColumn, ...] = (
    EnumColumn(
        "customer_registrations",
        "status",
        RegistrationStatus,
        "valid_status",
        default=INITIAL_STATUS.value,
        indexes=(
            IndexPredicate("customer_registrations_active_phone_key", _active(ACTIVE_STATUSES)),
            IndexPredicate("customer_registrations_active_email_key", _active(ACTIVE_STATUSES)),
        ),
    ),
    EnumColumn("registration_status_history", "from_status", RegistrationStatus, "valid_from_status"),
    EnumColumn("registration_status_history", "to_status", RegistrationStatus, "valid_to_status"),
    EnumColumn("installation_tickets", "status", TicketStatus, "valid_ticket_status", default=TicketStatus.OPEN.value),
    EnumColumn(
        "notification_outbox",
        "status",
        NotificationStatus,
        "valid_notification_status",
        default=NotificationStatus.PENDING.value,
        indexes=(IndexPredicate("notification_outbox_due_idx", _active([NotificationStatus.PENDING])),),
    ),
)
