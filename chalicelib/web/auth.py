"""Who is calling: a staff member from a Bearer JWT, roles in ``cognito:groups``.

In AWS they come from a Cognito user pool, RS256, checked against its JWKS
(``AUTH_JWKS_URL``) and issuer (``AUTH_ISSUER``); locally and in tests they are
HS256, signed with ``AUTH_JWT_SECRET``.
"""

import time
from collections.abc import Mapping
from typing import Any

from chalicelib.errors import ServiceUnavailableError, UnauthorizedError
from chalicelib.platform.runtime import VERIFIED_TOKENS_MAX, Runtime
from chalicelib.platform.settings import Settings
from chalicelib.staff import Role, Staff


def authenticate(headers: Mapping[str, str], runtime: Runtime) -> Staff:
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
    settings, verified = runtime.settings, runtime.verified_tokens
    cache_key = (token, settings.auth_jwks_url, settings.auth_jwt_secret, settings.auth_issuer)
    remembered = verified.get(cache_key)
    if remembered is not None and remembered[1] > time.time():
        return remembered[0]
    staff, expires_at = _verify(token, settings, runtime)
    if len(verified) >= VERIFIED_TOKENS_MAX:
        verified.clear()
    verified[cache_key] = (staff, expires_at)
    return staff


def authenticate_if_sent(headers: Mapping[str, str], runtime: Runtime) -> Staff | None:
    """The caller when an ``Authorization`` header came (see ``authenticate``), else None (the public)."""
    if not (headers.get("authorization") or headers.get("Authorization")):
        return None
    return authenticate(headers, runtime)


def _verify(token: str, settings: Settings, runtime: Runtime) -> tuple[Staff, float]:
    import jwt

    required = ["exp", "sub"] + (["iss"] if settings.auth_issuer else [])
    try:
        if settings.auth_jwks_url:
            key: Any = runtime.jwks_client(settings.auth_jwks_url).get_signing_key_from_jwt(token).key
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
