"""What the code expects of the live schema, as data the verifier reads.

Each ``EnumColumn`` says: this column holds members of this enum, guarded by this
CHECK constraint, with this default, and these partial indexes' predicates select
exactly these members.  The next enum-guarded column is one more line in
``CONTRACT``.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

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


# Every table the code writes, and the columns it names in an INSERT or UPDATE.  A
# migration that drops or renames one of them breaks the release still running
# during a deploy; the migrate gate refuses it (see ``contract_data``).
WRITES: dict[str, tuple[str, ...]] = {
    "packages": ("name", "speed_mbps", "monthly_price_idr"),
    "customer_registrations": (
        "id",
        "full_name",
        "email",
        "phone",
        "address",
        "city",
        "package_id",
        "notes",
        "status",
        "updated_at",
        "survey_scheduled_at",
        "surveyor",
        "survey_feasible",
        "survey_notes",
        "status_reason",
    ),
    "registration_status_history": ("registration_id", "action", "from_status", "to_status", "actor", "reason"),
    "registration_otps": (
        "registration_id",
        "code_hash",
        "expires_at",
        "failed_attempts",
        "sent_at",
        "codes_sent",
    ),
    "notification_outbox": (
        "dedupe_key",
        "registration_id",
        "recipient",
        "template",
        "payload",
        "status",
        "attempts",
        "next_attempt_at",
        "provider_message_id",
        "sent_at",
        "last_error",
    ),
    "idempotency_keys": ("scope", "key", "request_sha256", "response_status", "response_body"),
    "customers": ("registration_id", "full_name", "email", "phone", "address", "city", "package_id", "created_by"),
    "installation_tickets": ("customer_id",),
}

CONTRACT_FORMAT = 1


def contract_data(
    contract: Iterable[EnumColumn] = CONTRACT, writes: Mapping[str, Iterable[str]] = WRITES
) -> dict[str, Any]:
    """The contract as plain JSON data: what the migrate gate's custom resource carries.

    ``OldResourceProperties`` then say what the outgoing release writes, with no
    need for its code.  ``contract_from_data`` reads it back.
    """
    return {
        "format": CONTRACT_FORMAT,
        "enums": [
            {
                "table": column.table,
                "column": column.column,
                "enum": column.enum.__name__,
                "values": list(column.values),
                "constraint": column.constraint,
                "default": column.default,
                "indexes": [{"name": index.name, "selects": sorted(index.selects)} for index in column.indexes],
            }
            for column in contract
        ],
        "writes": {table: sorted(set(columns)) for table, columns in sorted(writes.items())},
    }


def contract_from_data(data: Mapping[str, Any]) -> tuple[tuple[EnumColumn, ...], dict[str, tuple[str, ...]]]:
    """(enum columns, writes) from ``contract_data``'s output; ``ValueError`` when it is not that."""
    if not isinstance(data, Mapping) or data.get("format") != CONTRACT_FORMAT:
        raise ValueError(f"not a schema contract of format {CONTRACT_FORMAT}")
    enums: dict[tuple[str, tuple[str, ...]], type[StrEnum]] = {}
    columns: list[EnumColumn] = []
    try:
        for item in data["enums"]:
            key = (str(item["enum"]), tuple(str(v) for v in item["values"]))
            if key not in enums:
                enums[key] = StrEnum(key[0], [(value, value) for value in key[1]])  # type: ignore[assignment]
            columns.append(
                EnumColumn(
                    str(item["table"]),
                    str(item["column"]),
                    enums[key],
                    str(item["constraint"]),
                    default=None if item.get("default") is None else str(item["default"]),
                    indexes=tuple(
                        IndexPredicate(str(index["name"]), frozenset(map(str, index["selects"])))
                        for index in item.get("indexes", [])
                    ),
                )
            )
        writes = {str(table): tuple(map(str, names)) for table, names in data["writes"].items()}
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"a schema contract lacks {error}") from error
    return tuple(columns), writes
