"""One voice in every error: the answers Chalice, http.server and API Gateway would give themselves
(unknown path, wrong method, wrong content type, HEAD, a trailing slash, a request line that is not
HTTP) and pydantic's refusals all come as compact JSON in the one envelope, in the project's words.
Each message is named here; ``devstack/fuzz_checks.py`` checks the envelope on every answer."""

import json
import os
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.cli.factory import CLIFactory
from chalice.local import LocalDevServer
from chalice.test import Client

from devstack.api import ContainerHandler, gateway_response
from devstack.fuzz_checks import envelope_problems
from tests.conftest import ROOT
from tests.support.api import SECRET, post, registration_body, token

NOT_FOUND = "no such path, or no such method on it"
A_UUID = "must be a UUID, such as 3fa85f64-5717-4562-b3fc-2c963f66afa6"


@pytest.fixture
def local_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """devstack.api's server (what `make run` serves) in a thread, on a free port."""
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = CLIFactory(str(ROOT), environ=dict(os.environ)).create_config_obj(chalice_stage_name="local")
    server = LocalDevServer(config.chalice_app, config, "127.0.0.1", port, handler_cls=ContainerHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.server.shutdown()
    thread.join(timeout=10)


def ask(url: str, method: str, headers: dict[str, str] | None = None, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310 (loopback)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def error_of(status: int, raw: bytes) -> dict[str, Any]:
    assert envelope_problems(status, raw) == []
    found: dict[str, Any] = json.loads(raw)["error"]
    return found


ADMIN = {**token("admin"), "Content-Type": "application/json"}
DEEP = b"[" * 5000 + b"]" * 5000


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "code", "message"),
    [
        ("GET", "/no/such/path", {}, None, 404, "not_found", NOT_FOUND),
        ("GET", "/packages/", {}, None, 404, "not_found", NOT_FOUND),
        ("GET", "/registrations/", token("cs"), None, 404, "not_found", NOT_FOUND),
        ("DELETE", "/packages", {}, None, 405, "method_not_allowed", "this path does not take DELETE"),
        ("TRACE", "/packages", {}, None, 405, "method_not_allowed", "this path does not take TRACE"),
        ("POST", "/packages", {**ADMIN, "Content-Type": "text/plain"}, b"x", 415, "unsupported_media_type",
         "send the body as application/json"),
        ("POST", "/registrations", {"Content-Type": "application/json"}, DEEP, 400, "invalid_input",
         "the request body is not valid"),
        ("POST", "/packages", {**token("cs"), "Content-Type": "application/json"}, b"{}", 403, "forbidden",
         "this needs the role admin"),
    ],
)  # fmt: skip
def test_the_local_server_answers_in_the_one_voice(
    local_api: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    status: int,
    code: str,
    message: str,
) -> None:
    got, raw = ask(f"{local_api}{path}", method, headers, body)
    assert got == status, raw
    error = error_of(got, raw)
    assert (error["code"], error["message"]) == (code, message)


def test_a_wrong_method_names_the_ones_the_path_takes(local_api: str) -> None:
    status, raw = ask(f"{local_api}/packages", "DELETE")
    assert error_of(status, raw)["details"] == {"allowed_methods": ["GET", "POST"]}


def test_json_nested_too_deep_is_called_that_not_invalid(local_api: str) -> None:
    status, raw = ask(f"{local_api}/registrations", "POST", {"Content-Type": "application/json"}, DEEP)
    [problem] = error_of(status, raw)["details"]["problems"]
    assert problem == {"field": "body", "problem": "is nested too deep (arrays or objects inside each other)"}


@pytest.mark.parametrize("path", ["/packages", "/no/such/path", "/packages/"])
def test_head_is_answered_as_behind_api_gateway_without_a_body(local_api: str, path: str) -> None:
    status, raw = ask(f"{local_api}{path}", "HEAD")
    assert (status, raw) == (gateway_response("MISSING_AUTHENTICATION_TOKEN")[0], b"")


def test_a_request_line_that_is_not_http_gets_the_envelope_not_html(local_api: str) -> None:
    host, port = local_api.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(b"NOT A REQUEST LINE AT ALL\r\n\r\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, raw = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 400") or head.startswith(b"HTTP/1.1 400"), head
    error = error_of(400, raw)
    assert (error["code"], error["message"]) == (
        "request_rejected",
        "the request was refused before it reached the service",
    )


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ({"package_id": "not-a-uuid"}, "body.package_id", A_UUID),
        ({"full_name": 5}, "body.full_name", "must be a string"),
        ({"full_name": ""}, "body.full_name", "must not be empty"),
        ({"full_name": "x" * 500}, "body.full_name", "must be at most 200 characters long"),
        ({"address": "   "}, "body.address", "must hold more than spaces"),
        ({"email": "not-an-address"}, "body.email", "is not an e-mail address such as siti@example.co.id"),
        ({"surprise": 1}, "body.surprise", "is not a field this request takes"),
    ],
)  # fmt: skip
def test_pydantic_refusals_are_said_in_our_words(
    api_client: Client, package: dict[str, Any], body: dict[str, Any], field: str, problem: str
) -> None:
    response = post(api_client, "/registrations", {**registration_body(package), **body})
    assert response.status_code == 400
    problems = error_of(400, response.body)["details"]["problems"]
    assert {"field": field, "problem": problem} in problems, problems


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/registrations?limit=500", "must be less than or equal to 100"),
        ("/registrations?limit=x", "must be a whole number"),
        ("/registrations?status=done", "must be one of pending_verification, verified, survey_scheduled, "
         "survey_completed, approved, customer_created, rejected, cancelled"),
    ],
)  # fmt: skip
def test_query_refusals_are_said_in_our_words(api_client: Client, path: str, problem: str) -> None:
    response = api_client.http.get(path, headers=token("cs"))
    [item] = error_of(response.status_code, response.body)["details"]["problems"]
    assert item["problem"] == problem


def test_a_missing_body_field_is_required_and_a_bad_code_is_six_digits(
    api_client: Client, package: dict[str, Any]
) -> None:
    missing = post(api_client, "/packages", {"name": "Rumah"}, token("admin"))
    assert {"field": "body.speed_mbps", "problem": "is required"} in error_of(400, missing.body)["details"]["problems"]
    created = post(api_client, "/registrations", registration_body(package)).json_body
    wrong = post(api_client, f"/registrations/{created['id']}/verify", {"code": "12"})
    assert error_of(400, wrong.body)["details"]["problems"] == [{"field": "body.code", "problem": "must be six digits"}]


def test_several_roles_are_named_as_a_list(api_client: Client) -> None:
    response = api_client.http.get("/registrations", headers=token("nobody"))
    error = error_of(403, response.body)
    assert error["message"].startswith("this needs one of the roles ")
    assert ", " in error["message"]
