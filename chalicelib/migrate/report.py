"""The one JSON report every migrate action returns."""

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Drift:
    """One way the live database differs from what the code expects.

    ``message`` says the effect first (what would fail), then the cause;
    ``fix_sql`` is the SQL that would repair it, or None where the fix is not SQL
    (restore an edited migration file, for one).
    """

    kind: str
    message: str
    fix_sql: str | None = None


@dataclass
class Report:
    """What an action did and found.  ``ok`` is derived: no drift."""

    action: str
    database: dict[str, Any] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)
    already_applied: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    durations_ms: dict[str, float] = field(default_factory=dict)
    catalog_queries: int = 0
    verify_ms: dict[str, float] = field(default_factory=dict)
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.drift

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        return {"ok": self.ok, **body}
