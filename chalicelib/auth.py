"""Who is calling: a staff member from a Bearer JWT, roles in ``cognito:groups``.

In AWS they come from a Cognito user pool, RS256, checked against its JWKS
(``AUTH_JWKS_URL``) and issuer (``AUTH_ISSUER``); locally and in tests they are
HS256, signed with ``AUTH_JWT_SECRET``.
"""

import functools
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.config import Settings
from chalicelib.errors import ForbiddenError, ServiceUnavailableError, UnauthorizedError
from chalicelib.workflow import Role


@dataclass(frozen=True)
class Staff:
    """A verified caller."""

    username: str
    roles: frozenset[Role]

    def may(self, allowed: Iterable[Role]) -> bool:
        return Role.ADMIN in self.roles or bool(self.roles & frozenset(allowed))


def authenticate(headers: Mapping[str, str], settings: Settings) -> Staff:
    """The caller named by the ``Authorization`` header.

    RS256 against Cognito's JWKS when ``AUTH_JWKS_URL`` is set (keys cached per
    container), else HS256 with ``AUTH_JWT_SECRET``; never both, so an HS256 token
    signed with a public key cannot pass.  The issuer is checked when ``AUTH_ISSUER``
    is set.  Raises ``UnauthorizedError``, or ``ServiceUnavailableError`` when the
    JWKS cannot be fetched.

    A verified token is remembered per container until it expires: staff send the
    same token with every request, and checking its signature again would cost more
    than the rest of a cheap request.
    """
    value = headers.get("authorization") or headers.get("Authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise UnauthorizedError("a Bearer token is required")
    cache_key = (token, settings.auth_jwks_url, settings.auth_jwt_secret, settings.auth_issuer)
    remembered = _verified.get(cache_key)
    if remembered is not None and remembered[1] > time.time():
        return remembered[0]
    staff, expires_at = _verify(token, settings)
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()
    _verified[cache_key] = (staff, expires_at)
    return staff


_VERIFIED_MAX = 1024
_verified: dict[tuple[str, str | None, str | None, str | None], tuple[Staff, float]] = {}


def _verify(token: str, settings: Settings) -> tuple[Staff, float]:
    import jwt

    required = ["exp", "sub"] + (["iss"] if settings.auth_issuer else [])
    try:
        if settings.auth_jwks_url:
            key: Any = _jwks_client(settings.auth_jwks_url).get_signing_key_from_jwt(token).key
            algorithm = "RS256"
        elif settings.auth_jwt_secret:
            key, algorithm = settings.auth_jwt_secret, "HS256"
        else:
            raise UnauthorizedError("token verification is not configured")
        # Cognito access tokens carry no "aud" (ID tokens do): the issuer and the
        # signature say who minted the token.
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            issuer=settings.auth_issuer,
            options={"require": required, "verify_aud": False},
        )
    except jwt.PyJWKClientConnectionError as error:
        raise ServiceUnavailableError("the token signing keys cannot be fetched; try again") from error
    except jwt.PyJWTError as error:
        raise UnauthorizedError(f"invalid token: {error}") from error
    groups = claims.get("cognito:groups") or []
    roles = frozenset(Role(g) for g in groups if g in Role._value2member_map_)
    username = str(claims.get("cognito:username") or claims.get("username") or claims["sub"])
    return Staff(username=username, roles=roles), float(claims["exp"])


@functools.cache
def _jwks_client(url: str) -> Any:
    import jwt

    return jwt.PyJWKClient(url, cache_keys=True, lifespan=3600, timeout=5)


def require(staff: Staff, allowed: Iterable[Role]) -> Staff:
    """``staff``, if any of its roles is in ``allowed``; raises ``ForbiddenError``."""
    allowed = frozenset(allowed)
    if not staff.may(allowed):
        raise ForbiddenError(
            f"this needs one of the roles {', '.join(sorted(allowed))}", {"roles": sorted(staff.roles)}
        )
    return staff
