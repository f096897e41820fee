"""A fake WhatsApp Cloud API on loopback: the local stack's message sink and the tests' WhatsApp.

It answers ``POST /<version>/<phone number id>/messages`` like the Cloud API does:
it checks the Bearer token and the body's shape (HTTP 400 with the Graph error JSON
when wrong) and answers success with a fresh ``wamid``.  Tests script the next
answers (``FakeWhatsApp.queue``) and read what it received (``FakeWhatsApp.requests``, or over
HTTP, ``GET /_messages``: every delivered message, recipients unmasked)::

    with FakeWhatsApp() as fake:
        fake.queue(Reply.http(429, retry_after=3), Reply.error(131026), Reply.slow(1.0))
        client = WhatsAppClient(fake.api_url, fake.phone_number_id, fake.token)

It also takes ``POST /<version>/<business account id>/message_templates`` (what
``make whatsapp-templates --apply`` sends), checks the body's shape, answers
``{"id", "status": "APPROVED", "category"}`` and keeps the template
(``FakeWhatsApp.templates``, ``GET /_templates``): a message for a template it
holds must fit it, so a local run catches a send that WhatsApp would reject with
code 132000 or 132001.

CLI (the local sink; one JSON line per message, phone numbers masked)::

    python -m devstack.whatsapp --port 8025 [--token TOKEN] [--phone-number-id ID]
"""

import argparse
import json
import re
import secrets
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

API_VERSION = "v21.0"

# The HTTP status the Cloud API answers with for a code, when a test does not say.
_HTTP_STATUS_BY_CODE = {0: 401, 190: 401, 10: 403, 368: 403, 131000: 500, 131016: 503, 133004: 503}
_TITLE_BY_CODE = {
    0: "AuthException",
    4: "Application request limit reached",
    100: "Invalid parameter",
    190: "Invalid OAuth access token",
    130429: "Rate limit hit",
    131000: "Something went wrong",
    131016: "Service unavailable",
    131026: "Message undeliverable",
    131047: "Re-engagement message",
    131048: "Spam rate limit hit",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
    133004: "Server temporarily unavailable",
}
_RECIPIENT = re.compile(r"^[1-9][0-9]{6,14}$")


@dataclass(frozen=True)
class Reply:
    """How the fake answers one request; build with the class methods."""

    status: int = 200
    code: int | None = None
    delay_s: float = 0.0
    retry_after: str | None = None
    drop: bool = False

    @classmethod
    def success(cls) -> "Reply":
        return cls()

    @classmethod
    def http(cls, status: int, *, retry_after: float | str | None = None) -> "Reply":
        """A bare HTTP error (e.g. 429, 500), optionally with ``Retry-After``."""
        return cls(status=status, retry_after=None if retry_after is None else str(retry_after))

    @classmethod
    def error(cls, code: int, *, status: int | None = None, retry_after: float | str | None = None) -> "Reply":
        """A Graph API error with ``code`` (e.g. 130429, 131026), HTTP 400 unless said otherwise."""
        return cls(
            status=status or _HTTP_STATUS_BY_CODE.get(code, 400),
            code=code,
            retry_after=None if retry_after is None else str(retry_after),
        )

    @classmethod
    def slow(cls, seconds: float, then: "Reply | None" = None) -> "Reply":
        """``then`` (success by default), answered after ``seconds``."""
        base = then or cls()
        return cls(base.status, base.code, seconds, base.retry_after, base.drop)

    @classmethod
    def dropped(cls) -> "Reply":
        """Read the request, then close the connection without an answer."""
        return cls(drop=True)


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the fake saw it, and what it answered."""

    path: str
    authorization: str | None
    body: Any
    status: int
    message_id: str | None
    received_at: float = field(default_factory=time.time)

    @property
    def to(self) -> str | None:
        return self.body.get("to") if isinstance(self.body, dict) else None


class FakeWhatsApp:
    """A Cloud API look-alike on ``host:port`` (port 0: any free port); thread-safe."""

    def __init__(
        self,
        *,
        token: str | None = "test-token",  # noqa: S107 (the fake's own, for tests)
        phone_number_id: str | None = "100000000000001",
        host: str = "127.0.0.1",
        port: int = 0,
        on_message: Callable[[ReceivedRequest], None] | None = None,
    ) -> None:
        self.token = token  # None: any non-empty Bearer token
        self.phone_number_id = phone_number_id or "100000000000001"
        self._check_phone_number_id = phone_number_id is not None
        self.host = host
        self.port = port
        self._on_message = on_message
        self._lock = threading.Lock()
        self._replies: deque[Reply] = deque()
        self._requests: list[ReceivedRequest] = []
        self._templates: dict[tuple[str, str], dict[str, Any]] = {}
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def api_url(self) -> str:
        """What ``WHATSAPP_API_URL`` should be: the base with its version."""
        return f"http://{self.host}:{self.port}/{API_VERSION}"

    def start(self) -> "FakeWhatsApp":
        """Listen (again, on the same port after ``stop``) and serve in a background thread."""
        self._stopping.clear()
        server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        server.daemon_threads = True
        server.block_on_close = False
        self.port = server.server_address[1]
        self._server = server
        # A short poll interval: stop() waits for it, and tests start and stop a server each.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-whatsapp", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: connections are refused until ``start``; slow answers are cut short."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "FakeWhatsApp":
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def queue(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order; then success again."""
        with self._lock:
            self._replies.extend(replies)

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def templates(self) -> list[dict[str, Any]]:
        """The templates created so far (the create requests' bodies), oldest first."""
        with self._lock:
            return list(self._templates.values())

    def _template(self, name: str, language: str) -> dict[str, Any] | None:
        with self._lock:
            return self._templates.get((name, language))

    def _keep_template(self, body: dict[str, Any]) -> None:
        with self._lock:
            self._templates[(body["name"], body["language"])] = body

    @property
    def delivered(self) -> list[ReceivedRequest]:
        """The requests answered with a message id."""
        return [request for request in self.requests if request.message_id]

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._replies.popleft() if self._replies else Reply.success()

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self._requests.append(request)
        if self._on_message is not None and request.message_id:
            self._on_message(request)

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)


def _handler_for(fake: FakeWhatsApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            authorization = self.headers.get("Authorization")
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = None
            reply = fake._next_reply()
            if reply.drop:
                fake._record(ReceivedRequest(self.path, authorization, body, 0, None))
                self.close_connection = True
                return
            # Recorded on arrival: a slow answer's request counts as received, as at Meta.
            status, document, message_id = _answer(fake, self.path, authorization, body, reply)
            fake._record(ReceivedRequest(self.path, authorization, body, status, message_id))
            if reply.delay_s:
                fake._sleep(reply.delay_s)
            payload = json.dumps(document).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if reply.retry_after is not None:
                    self.send_header("Retry-After", reply.retry_after)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up waiting (a scripted slow answer)

        def do_GET(self) -> None:
            # Not Cloud API paths: how `make demo` (and a developer) reads what the sink took.
            path = self.path.split("?")[0]
            content_type = "application/json"
            if path == "/_messages":
                payload = json.dumps({"messages": [summary(r) for r in fake.delivered]}).encode()
            elif path == "/_templates":
                payload = json.dumps({"templates": fake.templates}).encode()
            elif path == "/_last_code":
                # The README's walk-through: CODE=$(curl -s $SINK/_last_code), no JSON to dig in.
                code = last_code(fake.delivered)
                if code is None:
                    self.send_error(404, "no one-time code has been sent yet")
                    return
                payload, content_type = code.encode(), "text/plain"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # requests are recorded, and the CLI prints its own lines

    return Handler


def _answer(
    fake: FakeWhatsApp, path: str, authorization: str | None, body: Any, reply: Reply
) -> tuple[int, dict[str, Any], str | None]:
    """The status, JSON document and message id (on success) for one request."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme != "Bearer" or not token or (fake.token is not None and token != fake.token):
        return 401, _graph_error(190, "Invalid OAuth access token - Cannot parse access token"), None
    parts = path.strip("/").split("/")
    if len(parts) == 3 and parts[2] == "message_templates":
        return _create_template(fake, body)
    if len(parts) != 3 or parts[2] != "messages" or (fake._check_phone_number_id and parts[1] != fake.phone_number_id):
        return 400, _graph_error(100, f"Unsupported post request: unknown path {path}"), None
    problem = _shape_problem(body) or _template_problem(fake, body)
    if problem:
        code = 132000 if "parameters" in problem else 100
        return 400, _graph_error(code, problem), None
    if reply.code is not None:
        return reply.status, _graph_error(reply.code, f"scripted error {reply.code}"), None
    if reply.status != 200:
        return reply.status, {"error": {"message": f"scripted HTTP {reply.status}"}}, None
    message_id = "wamid." + secrets.token_urlsafe(24)
    document = {
        "messaging_product": "whatsapp",
        "contacts": [{"input": body["to"], "wa_id": body["to"]}],
        "messages": [{"id": message_id}],
    }
    return 200, document, message_id


def _shape_problem(body: Any) -> str | None:
    """What is wrong with a template message body, as the API would say it, or None."""
    if not isinstance(body, dict):
        return "the request body is not a JSON object"
    if body.get("messaging_product") != "whatsapp":
        return "(#100) The parameter messaging_product is required and must be 'whatsapp'."
    if body.get("recipient_type", "individual") != "individual":
        return "(#100) Param recipient_type must be 'individual'."
    if not isinstance(body.get("to"), str) or not _RECIPIENT.match(body["to"]):
        return "(#100) Param to must be a phone number of 7 to 15 digits, without '+'."
    if body.get("type") != "template":
        return "(#100) Param type must be 'template'."
    template = body.get("template")
    if not isinstance(template, dict) or not isinstance(template.get("name"), str) or not template["name"]:
        return "(#100) Param template.name is required."
    language = template.get("language")
    if not isinstance(language, dict) or not isinstance(language.get("code"), str) or not language["code"]:
        return "(#100) Param template.language.code is required."
    components = template.get("components", [])
    if not isinstance(components, list) or not all(isinstance(c, dict) and "type" in c for c in components):
        return "(#100) Param template.components must be a list of objects with a type."
    return None


def _create_template(fake: FakeWhatsApp, body: Any) -> tuple[int, dict[str, Any], str | None]:
    """A ``message_templates`` create request: kept and approved at once when its shape is right."""
    problem = _template_shape_problem(body)
    if problem:
        return 400, _graph_error(100, problem), None
    fake._keep_template(body)
    return 200, {"id": str(secrets.randbelow(10**15)), "status": "APPROVED", "category": body["category"]}, None


def _template_shape_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the request body is not a JSON object"
    if not isinstance(body.get("name"), str) or not re.fullmatch(r"[a-z0-9_]{1,512}", body["name"]):
        return "(#100) Param name must be lowercase letters, digits and underscores."
    if not isinstance(body.get("language"), str) or not body["language"]:
        return "(#100) Param language is required."
    if body.get("category") not in ("AUTHENTICATION", "MARKETING", "UTILITY"):
        return "(#100) Param category must be AUTHENTICATION, MARKETING or UTILITY."
    components = body.get("components")
    if not isinstance(components, list) or not components or not all(isinstance(c, dict) for c in components):
        return "(#100) Param components must be a non-empty list of objects."
    bodies = [c for c in components if c.get("type") == "BODY"]
    if len(bodies) != 1:
        return "(#100) A template has exactly one BODY component."
    text = bodies[0].get("text")
    if body["category"] != "AUTHENTICATION":
        if not isinstance(text, str) or not text:
            return "(#100) The BODY component needs its text."
        count = len(set(re.findall(r"\{\{(\d+)\}\}", text)))
        examples = (bodies[0].get("example") or {}).get("body_text") or [[]]
        if count and len(examples[0]) != count:
            return f"(#100) The body has {count} parameters and {len(examples[0])} example values."
    return None


def _template_problem(fake: FakeWhatsApp, body: dict[str, Any]) -> str | None:
    """How a message does not fit the template the sink holds under its name (None when none is held)."""
    template = body["template"]
    held = fake._template(template["name"], template["language"]["code"])
    if held is None:
        return None
    [held_body] = [c for c in held["components"] if c.get("type") == "BODY"]
    expected = 1 if held["category"] == "AUTHENTICATION" else len(set(re.findall(r"\{\{(\d+)\}\}", held_body["text"])))
    sent = [c for c in template.get("components", []) if c.get("type") == "body"]
    count = len(sent[0].get("parameters", [])) if sent else 0
    if count != expected:
        return f"Number of parameters ({count}) does not match the expected number of params ({expected})"
    return None


def _graph_error(code: int, details: str) -> dict[str, Any]:
    return {
        "error": {
            "message": f"(#{code}) {_TITLE_BY_CODE.get(code, 'Error')}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details},
            "fbtrace_id": secrets.token_urlsafe(16),
        }
    }


def mask_phone(number: str) -> str:
    """``6281234567890`` or ``+6281234567890`` as ``+62812****7890``."""
    digits = number.removeprefix("+")
    if len(digits) <= 9:
        return "+" + "*" * len(digits)
    return f"+{digits[:5]}****{digits[-4:]}"


def summary(request: ReceivedRequest, *, masked: bool = False) -> dict[str, Any]:
    """One delivered message as the sink shows it (``GET /_messages``, and the CLI's lines, masked)."""
    template = request.body.get("template", {})
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(request.received_at)),
        "to": mask_phone(request.body["to"]) if masked else request.body["to"],
        "template": template.get("name"),
        "language": template.get("language", {}).get("code"),
        # Kept on purpose: locally this sink is how a developer reads an OTP.
        "components": template.get("components", []),
        "message_id": request.message_id,
    }


def last_code(delivered: list[ReceivedRequest]) -> str | None:
    """The one-time code of the newest ``registration_otp`` message, whoever it went to."""
    for request in reversed(delivered):
        template = request.body.get("template", {})
        if template.get("name") == "registration_otp":
            return str(template["components"][0]["parameters"][0]["text"])
    return None


def _print_message(request: ReceivedRequest) -> None:
    print(json.dumps(summary(request, masked=True)), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.whatsapp", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--token", default=None, help="the Bearer token to require (default: any)")
    parser.add_argument("--phone-number-id", default=None, help="the phone number id to require (default: any)")
    args = parser.parse_args(argv)
    fake = FakeWhatsApp(
        token=args.token,
        phone_number_id=args.phone_number_id,
        host=args.host,
        port=args.port,
        on_message=_print_message,
    )
    fake.start()
    print(f"fake WhatsApp Cloud API: WHATSAPP_API_URL={fake.api_url}", file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        fake.stop()


if __name__ == "__main__":
    sys.exit(main())
