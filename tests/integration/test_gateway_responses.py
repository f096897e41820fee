"""API Gateway's own answers (unknown path, throttling, its 4xx/5xx) in the error envelope, from the
table of codes: in AWS through the merge template's gateway responses, locally through devstack.api."""

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

from chalicelib.errors import ERROR_CODES
from devstack.api import ContainerHandler, gateway_response
from tests.conftest import ROOT

TEMPLATE = ROOT / ".chalice" / "template-merge.json"


def gateway_responses() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(TEMPLATE.read_text())["Resources"]["RestAPI"]["Properties"]["GatewayResponses"]
    return found


def test_every_gateway_response_answers_with_a_code_of_the_table() -> None:
    configured = gateway_responses()
    expected = {kind: error for error in ERROR_CODES for kind in error.gateway_responses}
    assert set(configured) == set(expected)
    for kind, response in configured.items():
        error = expected[kind]
        # The default 4xx/5xx keep API Gateway's own status, but say it in our words: no $context text.
        body = response["ResponseTemplates"]["application/json"]
        assert "$context" not in body, kind
        assert json.loads(body) == {
            "error": {"code": error.code, "message": json.loads(body)["error"]["message"], "details": {}}
        }, kind
        assert body == json.dumps(json.loads(body), separators=(",", ":")), f"{kind}: compact, as the service answers"
        assert response.get("StatusCode") == (None if kind.startswith("DEFAULT_") else str(error.status)), kind


@pytest.fixture
def local_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """devstack.api's server (what `make run` serves) in a thread, on a free port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    factory = CLIFactory(str(ROOT), environ=dict(os.environ))
    config = factory.create_config_obj(chalice_stage_name="local")
    server = LocalDevServer(config.chalice_app, config, "127.0.0.1", port, handler_cls=ContainerHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.server.shutdown()
    thread.join(timeout=10)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer whatever"}])
def test_an_unknown_path_is_a_404_in_the_envelope_as_in_aws(local_api: str, headers: dict[str, str]) -> None:
    request = urllib.request.Request(f"{local_api}/no/such/path", headers=headers)  # noqa: S310 (loopback)
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310 (loopback)
    status, body = gateway_response("MISSING_AUTHENTICATION_TOKEN")
    assert answer.value.code == status == 404
    assert json.loads(answer.value.read()) == json.loads(body)
    assert json.loads(body)["error"]["code"] == "not_found"
