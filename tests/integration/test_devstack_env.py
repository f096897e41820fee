"""`python -m devstack.env` (the walk-through's variables) and `make demo` read the same ports as `make run`;
the sink's ``GET /_last_code`` is the newest one-time code."""

import json
import subprocess
import urllib.request

import jwt
import pytest

from devstack import demo, env
from devstack.whatsapp import FakeWhatsApp, last_code
from tests.conftest import ROOT

ENV = {"PORT": "18000", "WHATSAPP_PORT": "18025", "AUTH_JWT_SECRET": "x" * 32}


def test_the_exports_name_the_ports_make_run_listens_on() -> None:
    lines = env.export_lines(ENV)
    assert "export API=http://127.0.0.1:18000" in lines
    assert "export SINK=http://127.0.0.1:18025" in lines
    tokens = {line.split("=", 1)[0].removeprefix("export "): line.split("=", 1)[1] for line in lines}
    for role in ("cs", "surveyor", "approver", "admin"):
        claims = jwt.decode(tokens[f"TOKEN_{role.upper()}"], ENV["AUTH_JWT_SECRET"], algorithms=["HS256"])
        assert claims["cognito:groups"] == [role]


def test_the_exports_are_valid_shell() -> None:
    script = "\n".join(env.export_lines(ENV)) + '\necho "$API $SINK ${#TOKEN_CS}"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    api, sink, length = out.split()
    assert (api, sink) == ("http://127.0.0.1:18000", "http://127.0.0.1:18025")
    assert int(length) > 100


def test_make_demo_defaults_to_the_same_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, str] = {}

    def fake_walk(api: str, sink: str, token: object, timeout_s: float) -> dict[str, str]:
        seen.update(api=api, sink=sink)
        return {}

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(demo, "walk", fake_walk)
    assert demo.main([]) == 0
    assert seen == {"api": "http://127.0.0.1:18000", "sink": "http://127.0.0.1:18025"}


def test_the_sink_answers_the_newest_code_as_plain_text() -> None:
    with FakeWhatsApp() as fake:
        for code in ("111111", "222222"):
            body = {
                "messaging_product": "whatsapp",
                "to": "6281234567890",
                "type": "template",
                "template": {
                    "name": "registration_otp",
                    "language": {"code": "id"},
                    "components": [{"type": "body", "parameters": [{"type": "text", "text": code}]}],
                },
            }
            request = urllib.request.Request(  # noqa: S310 (loopback)
                f"{fake.api_url}/{fake.phone_number_id}/messages",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {fake.token}"},
            )
            urllib.request.urlopen(request, timeout=5).close()  # noqa: S310 (loopback)
        assert last_code(fake.delivered) == "222222"
        base = fake.api_url.rsplit("/", 1)[0]
        with urllib.request.urlopen(f"{base}/_last_code", timeout=5) as response:  # noqa: S310
            assert response.headers["Content-Type"] == "text/plain"
            assert response.read() == b"222222"


def test_no_code_yet_is_none() -> None:
    assert last_code([]) is None
