"""``chalice local`` as one warm Lambda container: one request at a time, any method answered by the app.

Three differences from ``chalice local`` itself, all to behave like the deployed API:

- Requests reach the app one at a time.  A Lambda container handles one event at
  a time and ``app.py`` keeps one database connection per container; chalice's
  threaded server would run requests concurrently on that one connection, so one
  request's statements could land inside another's transaction.
- A method no route declares (``TRACE``, ``QUERY``…) gets the app's 405 in the
  pinned error shape; Python's ``http.server`` would answer 501 on its own, which
  is neither what API Gateway says nor a fault of the service.
- A path no route has gets what API Gateway answers with the merge template's gateway
  response ``MISSING_AUTHENTICATION_TOKEN``: 404 ``not_found`` in the error envelope
  (chalice local answers API Gateway's default, 403 "Missing Authentication Token").
  So does a path with a trailing slash (``/packages/``, which chalice local would route
  to ``/packages``) and ``HEAD`` (no route declares it; API Gateway does not answer it
  from ``GET``), the latter without a body, as HTTP wants for HEAD.
- Python's ``http.server`` answers some requests itself (a malformed request line, a
  header too long) with an HTML page; here they are the envelope too, as API Gateway's
  ``DEFAULT_4XX``.  A client that hangs up early (``curl -I``) is no traceback.

Usage: ``python -m devstack.api --host 127.0.0.1 --port 8000 --stage local``
"""

import argparse
import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from chalice.cli.factory import CLIFactory
from chalice.local import ChaliceRequestHandler, ForbiddenError, LocalDevServer, LocalGatewayException

ROOT = Path(__file__).resolve().parents[1]


class ContainerHandler(ChaliceRequestHandler):
    """One request in the app at a time; every HTTP method goes to the app (405 for those no route has).

    Connections still get a thread each (keep-alive clients would block a single-threaded
    server); the lock is what makes the app see one request at a time.
    """

    _one_at_a_time = threading.Lock()

    def _handle_one(self) -> None:
        if self.command == "HEAD" or _trailing_slash(self.path):
            self._send_gateway_response("MISSING_AUTHENTICATION_TOKEN", with_body=self.command != "HEAD")
            return
        with self._one_at_a_time:
            self._generic_handle()

    def _send_gateway_response(self, response_type: str, with_body: bool = True) -> None:
        status, body = gateway_response(response_type)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (a bad request line, a header too long): the envelope, not HTML."""
        self.close_connection = True
        if str(getattr(self, "request_version", "")) == "HTTP/0.9":  # an unreadable request line: a status line anyway
            self.request_version = "HTTP/1.0"
        self._send_gateway_response("DEFAULT_4XX" if code < 500 else "DEFAULT_5XX", with_body=self.command != "HEAD")

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError):
            self.close_connection = True  # the client hung up (curl -I reads the head and goes)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _handle_one  # noqa: N815

    def _send_error_response(self, error: LocalGatewayException) -> None:
        # chalice local raises this ForbiddenError (with or without an Authorization header)
        # only when no route matches the path.
        if isinstance(error, ForbiddenError) and error.headers.get("x-amzn-ErrorType") == "UnauthorizedException":
            status, body = gateway_response("MISSING_AUTHENTICATION_TOKEN")
            self._send_http_response(status, {**error.headers, "Content-Type": "application/json"}, body)
            return
        super()._send_error_response(error)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._handle_one
        raise AttributeError(name)


def gateway_response(response_type: str) -> tuple[int, bytes]:
    """(status, body) API Gateway answers for ``response_type``, as ``.chalice/template-merge.json`` sets it
    (the default 4xx/5xx keep API Gateway's own status: 400 and 502 here)."""
    template = json.loads((ROOT / ".chalice" / "template-merge.json").read_text())
    response = template["Resources"]["RestAPI"]["Properties"]["GatewayResponses"][response_type]
    default = 502 if response_type == "DEFAULT_5XX" else 400
    return int(response.get("StatusCode", default)), response["ResponseTemplates"]["application/json"].encode()


def _trailing_slash(path: str) -> bool:
    route = path.split("?", 1)[0]
    return len(route) > 1 and route.endswith("/")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.api")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--stage", default="local")
    args = parser.parse_args(argv)
    # The factory puts the stage's environment variables into os.environ before importing app.py.
    factory = CLIFactory(str(ROOT), environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name=args.stage)
    server = LocalDevServer(config.chalice_app, config, args.host, args.port, handler_cls=ContainerHandler)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how make run stops us
        server.serve_forever()


if __name__ == "__main__":
    main()
