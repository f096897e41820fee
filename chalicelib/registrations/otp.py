"""One-time codes that prove a registrant holds the phone they registered with.

A code is 6 digits from ``secrets``; only an HMAC of it (keyed with ``OTP_HASH_KEY``
and bound to the registration) is stored, so a database dump does not reveal codes
and a hash cannot be replayed on another registration.  The code itself leaves
only in the WhatsApp authentication-template message, whose outbox row is marked
sensitive so the sender redacts it once sent.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any
from uuid import UUID

from chalicelib.notifications.templates import REGISTRATION_OTP
from chalicelib.platform.settings import ConfigurationError

CODE_DIGITS = 6
VALID_FOR = timedelta(minutes=10)
MAX_FAILED_ATTEMPTS = 5
RESEND_AFTER = timedelta(minutes=1)
# After this many codes for one registration, staff verify by phone instead.
MAX_CODES = 5
TEMPLATE = REGISTRATION_OTP.name


def new_code() -> str:
    """A uniformly random 6-digit code."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(key: str | None, registration_id: UUID, code: str) -> bytes:
    """HMAC-SHA256 of the code, bound to the registration; raises ``ConfigurationError`` without a key."""
    if not key:
        raise ConfigurationError("OTP_HASH_KEY is not set")
    return hmac.new(key.encode(), f"{registration_id}:{code}".encode(), hashlib.sha256).digest()


def matches(stored: bytes, key: str | None, registration_id: UUID, code: str) -> bool:
    """Constant-time comparison of a submitted code with the stored hash."""
    return hmac.compare_digest(bytes(stored), code_hash(key, registration_id, code))


def message_payload(code: str) -> dict[str, Any]:
    """The outbox payload of an authentication-template message carrying ``code``.

    WhatsApp authentication templates take the code twice: in the body and in the
    copy-code button (``REGISTRATION_OTP.components``).
    """
    return {"language": REGISTRATION_OTP.language, "sensitive": True, "components": REGISTRATION_OTP.components(code)}
