"""A small client for the WhatsApp Cloud API's template messages, on the standard library only.

Every failure is one of three errors, by what the caller may do next:

- ``WhatsAppRetryableError``: nothing was delivered; send again later (throttling,
  the API down, the connection refused before a byte was sent).
- ``WhatsAppPermanentError``: this message can never be delivered as it is (bad
  recipient, unknown template, wrong parameters).
- ``WhatsAppOutcomeUnknownError``: the request went out and no answer came back (a
  timeout, a dropped connection): the message may have been delivered, so it must not
  be sent again blindly.

Classification follows Meta's advice to decide on the Graph error ``code``, not the
HTTP status (throttling codes such as 130429 come back as HTTP 400); the HTTP status
decides only when the body carries no code.
"""

import json
import re
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from chalicelib.platform.settings import ConfigurationError, Settings

if TYPE_CHECKING:
    # http.client (and email, which it and Retry-After's dates need) is imported when a message
    # is sent, not at a cold start that sends none (the worker's, without WhatsApp configured).
    import http.client

# Codes after which the same message may succeed later: throttling, temporary
# outages, and account problems an operator fixes (an expired token).  Max attempts
# bound how long a row keeps trying.
RETRYABLE_CODES: dict[int, str] = {
    0: "access token could not be authenticated",
    1: "API unknown error (possible server error)",
    2: "API service temporarily down or overloaded",
    3: "app lacks a capability or permission",
    4: "app hit its API call rate limit",
    10: "permission not granted or removed",
    190: "access token expired or invalid",
    80007: "WhatsApp Business Account rate limit",
    130429: "Cloud API throughput limit reached",
    131000: "something went wrong (unknown error)",
    131016: "service unavailable",
    131048: "spam rate limit",
    131056: "pair rate limit (too many messages to this recipient)",
    131057: "business account in maintenance mode",
    133004: "server temporarily unavailable",
}

# Codes that mean this message, as written, will never be delivered.
PERMANENT_CODES: dict[int, str] = {
    100: "invalid parameter",
    368: "business account restricted for policy violations",
    130472: "recipient is part of an experiment",
    130497: "business account restricted from messaging this country",
    131008: "required parameter missing",
    131009: "parameter value not valid",
    131021: "recipient cannot be the sender",
    131026: "message undeliverable",
    131031: "business account locked",
    131042: "business eligibility payment issue",
    131047: "re-engagement message: more than 24 hours since the customer replied",
    131049: "Meta chose not to deliver (per-user marketing limit)",
    131050: "recipient stopped marketing messages",
    131051: "unsupported message type",
    132000: "template parameter count mismatch",
    132001: "template does not exist in this language",
    132005: "translated template text too long",
    132007: "template format character policy violated",
    132012: "template parameter format mismatch",
    132015: "template paused for low quality",
    132016: "template disabled",
    133010: "phone number not registered",
}

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_MAX_ERROR_TEXT = 300


class WhatsAppError(Exception):
    """A send that did not yield a message id; ``str()`` names no phone number and no content."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        code: int | None = None,
        details: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code
        self.details = details
        self.retry_after_s = retry_after_s

    def describe(self, *, with_details: bool = True) -> str:
        """One line for ``last_error``: the class, HTTP status, Graph code and message."""
        parts = [type(self).__name__]
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        if self.code is not None:
            parts.append(f"code {self.code}")
        text = f"{' '.join(parts)}: {self.message}"
        if with_details and self.details:
            text += f" ({self.details})"
        return text[:_MAX_ERROR_TEXT]


class WhatsAppRetryableError(WhatsAppError):
    """Nothing was delivered; the same message may succeed later (after ``retry_after_s`` when given)."""


class WhatsAppPermanentError(WhatsAppError):
    """The message can never be delivered as it is; do not send it again."""


class WhatsAppOutcomeUnknownError(WhatsAppError):
    """The request was sent and no answer came: the message may have gone out."""


class WhatsAppClient:
    """Sends template messages through ``POST {api_url}/{phone_number_id}/messages``."""

    def __init__(self, api_url: str, phone_number_id: str, token: str, *, timeout_s: float = 5.0) -> None:
        parsed = urllib.parse.urlsplit(api_url.rstrip("/"))
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigurationError(f"WHATSAPP_API_URL must be an http(s) URL, not {api_url!r}")
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port
        self._path = f"{parsed.path}/{urllib.parse.quote(phone_number_id)}/messages"
        self._token = token
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings: Settings) -> "WhatsAppClient":
        """The client for ``settings``; raises ``ConfigurationError`` when a WhatsApp setting is missing."""
        if not (settings.whatsapp_api_url and settings.whatsapp_phone_number_id and settings.whatsapp_token):
            raise ConfigurationError("set WHATSAPP_API_URL, WHATSAPP_PHONE_NUMBER_ID and WHATSAPP_TOKEN")
        # Over http the bearer token would cross the network in clear: only a local sink may take it.
        if settings.stage != "local" and urllib.parse.urlsplit(settings.whatsapp_api_url).scheme != "https":
            raise ConfigurationError(f"WHATSAPP_API_URL must be https outside the local stage (stage {settings.stage})")
        return cls(
            settings.whatsapp_api_url,
            settings.whatsapp_phone_number_id,
            settings.whatsapp_token,
            timeout_s=settings.whatsapp_timeout_s,
        )

    def send_template(self, recipient: str, template: str, *, components: list[Any], language: str = "id") -> str:
        """Send one template message to ``recipient`` (E.164, ``+62…``); returns its ``wamid``.

        Raises ``WhatsAppRetryableError``, ``WhatsAppPermanentError`` or
        ``WhatsAppOutcomeUnknownError``; never anything else for a network or API failure.
        """
        if not _E164.match(recipient):
            raise WhatsAppPermanentError("recipient is not an E.164 phone number")
        body = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": recipient.removeprefix("+"),
            "type": "template",
            "template": {"name": template, "language": {"code": language}, "components": components},
        }
        status, headers, raw = self._post(json.dumps(body).encode())
        return _message_id(status, headers, raw)

    def _post(self, body: bytes) -> "tuple[int, http.client.HTTPMessage, bytes]":
        import http.client

        connection_class = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        conn = connection_class(self._host, self._port, timeout=self.timeout_s)
        try:
            try:
                conn.connect()
            except OSError as error:
                # Refused, unresolvable, or no answer to the handshake: not a byte of the request left.
                raise WhatsAppRetryableError(f"could not connect: {type(error).__name__}: {error}") from error
            try:
                conn.request(
                    "POST",
                    self._path,
                    body,
                    {
                        "Authorization": f"Bearer {self._token}",
                        "Content-Type": "application/json",
                        "Accept": "application/json",
                    },
                )
                response = conn.getresponse()
                return response.status, response.headers, response.read()
            except (OSError, http.client.HTTPException) as error:
                # The request may have reached the API in full: its fate is unknown.
                kind = "timed out" if isinstance(error, TimeoutError) else f"connection lost ({type(error).__name__})"
                raise WhatsAppOutcomeUnknownError(f"{kind} after the request was sent") from error
        finally:
            conn.close()


def _message_id(status: int, headers: "http.client.HTTPMessage", raw: bytes) -> str:
    try:
        document = json.loads(raw) if raw else {}
    except ValueError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    if 200 <= status < 300:
        messages = document.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            message_id = messages[0].get("id")
            if isinstance(message_id, str) and message_id:
                return message_id
        # Accepted, yet no id to prove it: the message may be on its way.
        raise WhatsAppOutcomeUnknownError("success answer without a message id", http_status=status)
    raise _classify(status, document, _retry_after_s(headers.get("Retry-After")))


def _classify(status: int, document: dict[str, Any], retry_after_s: float | None) -> WhatsAppError:
    import http.client

    error = document.get("error")
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    code = int(code) if isinstance(code, int | str) and str(code).isdigit() else None
    message = str(error.get("message") or http.client.responses.get(status, "error"))[:_MAX_ERROR_TEXT]
    error_data = error.get("error_data")
    details = str(error_data.get("details")) if isinstance(error_data, dict) and error_data.get("details") else None
    fields: dict[str, Any] = {"http_status": status, "code": code, "details": details, "retry_after_s": retry_after_s}
    if code in RETRYABLE_CODES:
        return WhatsAppRetryableError(message, **fields)
    if code in PERMANENT_CODES:
        return WhatsAppPermanentError(message, **fields)
    if code is not None and 200 <= code <= 299:  # API permission family: fixed by an operator
        return WhatsAppRetryableError(message, **fields)
    if status in (408, 425, 429) or status >= 500:
        return WhatsAppRetryableError(message, **fields)
    return WhatsAppPermanentError(message, **fields)


def _retry_after_s(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
