"""Who acts: a staff member (subject and roles), and the check that a role may do something.

This is vocabulary every feature shares, like the statuses.  Reading a ``Staff``
from a Bearer token is the web edge's job (``chalicelib.web.auth``).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from chalicelib.errors import ForbiddenError


class Role(StrEnum):
    """Staff roles, carried in the token's ``cognito:groups`` claim."""

    CS = "cs"
    SURVEYOR = "surveyor"
    APPROVER = "approver"
    ADMIN = "admin"


@dataclass(frozen=True)
class Staff:
    """A verified caller."""

    username: str
    roles: frozenset[Role]

    def may(self, allowed: Iterable[Role]) -> bool:
        return Role.ADMIN in self.roles or bool(self.roles & frozenset(allowed))

    def assigned_only(self) -> str | None:
        """Whose surveys this caller may read: their own (``username``) when surveying is their
        only role, else None (every registration: ``cs``, ``approver`` and ``admin`` read all)."""
        return self.username if self.roles == frozenset({Role.SURVEYOR}) else None


def require(staff: Staff, allowed: Iterable[Role]) -> Staff:
    """``staff``, if any of its roles is in ``allowed``; raises ``ForbiddenError``."""
    allowed = frozenset(allowed)
    if not staff.may(allowed):
        names = sorted(allowed)
        needs = f"the role {names[0]}" if len(names) == 1 else f"one of the roles {', '.join(names)}"
        raise ForbiddenError(f"this needs {needs}", {"roles": sorted(staff.roles)})
    return staff
