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


def _in_words(error: Exception) -> str:
    """Why a token was refused, in our words: PyJWT's own messages can quote a decoder's internals
    (``'utf-8' codec can't decode byte 0xb7``), which say nothing useful to a client."""
    import jwt

    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"the token has no {error.claim!r} claim"
    for kind, words in (
        (jwt.ExpiredSignatureError, "the token has expired"),
        (jwt.ImmatureSignatureError, "the token is not valid yet"),
        (jwt.InvalidIssuerError, "the token was issued by another issuer"),
        (jwt.InvalidAlgorithmError, "the token is signed with an algorithm this API does not accept"),
        (jwt.InvalidSignatureError, "the token's signature does not match"),
        (jwt.PyJWKClientError, "the token is signed with a key this API does not know"),
        (jwt.DecodeError, "the token is not a well-formed JWT"),
    ):
        if isinstance(error, kind):
            return words
    return "the token is not valid"


def _verify(token: str, settings: Settings, runtime: Runtime) -> tuple[Staff, float]:
    import jwt

    cognito = bool(settings.auth_jwks_url)
    required = ["exp", "sub"] + (["iss"] if settings.auth_issuer else []) + (["token_use"] if cognito else [])
    try:
        if settings.auth_jwks_url:
            key: Any = runtime.jwks_client(settings.auth_jwks_url).get_signing_key_from_jwt(token).key
            algorithm = "RS256"
        elif settings.auth_jwt_secret:
            key, algorithm = settings.auth_jwt_secret, "HS256"
        else:
            raise UnauthorizedError("token verification is not configured")
        # Cognito access tokens carry no "aud" but "client_id", checked below; ID
        # tokens carry "aud" and are refused by their "token_use".
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
        raise UnauthorizedError(_in_words(error)) from None
    _check_use_and_client(claims, cognito, settings.auth_client_ids)
    username = str(claims.get("cognito:username") or claims.get("username") or claims["sub"])
    return Staff(username=username, roles=_roles(claims.get("cognito:groups"))), float(claims["exp"])


def _check_use_and_client(claims: dict[str, Any], cognito: bool, client_ids: frozenset[str]) -> None:
    # An access token, from one of our app clients: a Cognito ID token (meant for the
    # app, not for APIs) or a token another app client of the pool was given is not
    # a staff member calling us.  Locally (HS256) the same rules hold where the claims are present.
    if claims.get("token_use", "access") != "access":
        raise UnauthorizedError("only access tokens are accepted")
    if (cognito or client_ids) and claims.get("client_id") not in client_ids:
        raise UnauthorizedError("the token was issued to another application")


def _roles(groups: Any) -> frozenset[Role]:
    """The roles named in ``cognito:groups``: a list of strings, or else no role at all."""
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        return frozenset()
    return frozenset(Role(g) for g in groups if g in Role._value2member_map_)
