"""One-time codes that prove a registrant holds the phone they registered with.

A code is 6 digits from ``secrets``; only an HMAC of it (keyed with ``OTP_HASH_KEY``
and bound to the registration) is stored, so a database dump does not reveal codes
and a hash cannot be replayed on another registration.  The code itself leaves
only in the WhatsApp authentication-template message, whose outbox row is marked
sensitive (the sender redacts it once sent) and carries ``valid_until`` (an unsent
code is redacted when it expires, WhatsApp up or not).  Every code sent counts
against a ``SendBudget``: WhatsApp bills each one.
"""

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from chalicelib.message_templates import REGISTRATION_OTP
from chalicelib.platform.settings import ConfigurationError

CODE_DIGITS = 6
VALID_FOR = timedelta(minutes=10)
MAX_FAILED_ATTEMPTS = 5
RESEND_AFTER = timedelta(minutes=1)
# After this many codes for one registration, staff verify by phone instead.
MAX_CODES = 5
TEMPLATE = REGISTRATION_OTP.name


@dataclass(frozen=True)
class SendBudget:
    """Who asks for a code and how many they may have: WhatsApp bills every one sent.

    ``client`` is the request's source address; ``per_client_per_hour`` and ``per_day``
    (everyone together, per UTC day) are settings (docs/security.md).
    """

    client: str | None
    per_client_per_hour: int
    per_day: int

    def params(self) -> dict[str, Any]:
        """The statement parameters that count one code against this budget."""
        return {
            "client_bucket": client_bucket(self.client),
            "per_client": self.per_client_per_hour,
            "per_day": self.per_day,
        }


def client_bucket(address: str | None) -> str:
    """The counter a source address counts against: the address, or its /64 for IPv6
    (one subscriber is usually given a whole /64, so one address each would be no limit)."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return "client:unknown"
    if parsed.version == 6:
        return f"client:{ipaddress.ip_network(f'{parsed}/64', strict=False)}"
    return f"client:{parsed}"


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
