"""Who is calling: a staff member from a Bearer JWT, roles in ``cognito:groups``.

Locally and in tests the tokens are HS256, signed with ``AUTH_JWT_SECRET``.
(RS256 against Cognito's JWKS, ``AUTH_JWKS_URL`` / ``AUTH_ISSUER``, is still to come.)
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from chalicelib.errors import ForbiddenError, UnauthorizedError
from chalicelib.workflow import Role


@dataclass(frozen=True)
class Staff:
    """A verified caller."""

    username: str
    roles: frozenset[Role]

    def may(self, allowed: Iterable[Role]) -> bool:
        return Role.ADMIN in self.roles or bool(self.roles & frozenset(allowed))


def authenticate(headers: Mapping[str, str], secret: str | None) -> Staff:
    """The caller named by the ``Authorization`` header; raises ``UnauthorizedError``."""
    import jwt

    value = headers.get("authorization") or headers.get("Authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise UnauthorizedError("a Bearer token is required")
    if not secret:
        raise UnauthorizedError("token verification is not configured")
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]})
    except jwt.PyJWTError as error:
        raise UnauthorizedError(f"invalid token: {error}") from error
    groups = claims.get("cognito:groups") or []
    roles = frozenset(Role(g) for g in groups if g in Role._value2member_map_)
    return Staff(username=str(claims.get("cognito:username") or claims["sub"]), roles=roles)


def require(staff: Staff, allowed: Iterable[Role]) -> Staff:
    """``staff``, if any of its roles is in ``allowed``; raises ``ForbiddenError``."""
    allowed = frozenset(allowed)
    if not staff.may(allowed):
        raise ForbiddenError(
            f"this needs one of the roles {', '.join(sorted(allowed))}", {"roles": sorted(staff.roles)}
        )
    return staff
