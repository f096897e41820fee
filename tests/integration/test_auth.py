"""RS256 tokens checked against a JWKS served over real HTTP on loopback, as Cognito serves it."""

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from chalice.test import Client
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.integration.api import SECRET
from tests.support.runtime import new_container

ISSUER = "https://cognito-idp.ap-southeast-3.amazonaws.com/ap-southeast-3_TestPool"


class Jwks:
    """A JWKS endpoint on loopback that counts how often it is fetched."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        body = json.dumps({"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}]}).encode()
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, *roles: str, issuer: str = ISSUER, kid: str | None = None, **extra: Any) -> dict[str, str]:
        claims = {"sub": "u-1", "cognito:groups": list(roles), "iss": issuer, "exp": int(time.time()) + 600}
        pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        claims = {name: value for name, value in {**claims, **extra}.items() if value is not None}
        signed = jwt.encode(claims, pem, algorithm="RS256", headers={"kid": kid or self.kid})
        return {"Authorization": f"Bearer {signed}"}


@pytest.fixture
def jwks(client: Client, monkeypatch: pytest.MonkeyPatch) -> Iterator[Jwks]:
    served = Jwks()
    monkeypatch.setenv("AUTH_JWKS_URL", served.url)
    monkeypatch.setenv("AUTH_ISSUER", ISSUER)
    new_container(monkeypatch)
    yield served
    served.server.shutdown()


def test_cognito_tokens_are_checked_against_the_jwks_which_is_cached(client: Client, jwks: Jwks) -> None:
    for _ in range(3):
        response = client.http.get("/registrations", headers=jwks.token("cs", **{"cognito:username": "ani"}))
        assert response.status_code == 200, response.json_body
    assert jwks.fetches == 1


@pytest.mark.parametrize(
    "case", ["wrong issuer", "no issuer", "unknown kid", "hs256 with the secret", "hs256 with the public key"]
)
def test_tokens_that_are_not_cognitos_are_401(client: Client, jwks: Jwks, case: str) -> None:
    exp = int(time.time()) + 600
    public_pem = jwks.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    headers = {
        "wrong issuer": lambda: jwks.token("cs", issuer="https://evil.example.com"),
        "no issuer": lambda: jwks.token("cs", iss=None),
        "unknown kid": lambda: jwks.token("cs", kid="not-a-key"),
        "hs256 with the secret": lambda: {
            "Authorization": "Bearer " + jwt.encode({"sub": "x", "iss": ISSUER, "exp": exp}, SECRET, algorithm="HS256")
        },
        "hs256 with the public key": lambda: {
            "Authorization": "Bearer "
            + _hs256_signed_with(public_pem, {"sub": "x", "iss": ISSUER, "exp": exp, "cognito:groups": ["admin"]})
        },
    }[case]()
    response = client.http.get("/registrations", headers=headers)
    assert response.status_code == 401, response.json_body
    assert response.json_body["error"]["code"] == "unauthorized"


def test_a_known_user_without_the_role_is_403(client: Client, jwks: Jwks) -> None:
    body = json.dumps({"name": "X", "speed_mbps": 1, "monthly_price_idr": 1})
    headers = {**jwks.token("surveyor"), "Content-Type": "application/json"}
    assert client.http.post("/packages", body=body, headers=headers).status_code == 403


def test_jwks_unreachable_is_503(client: Client, jwks: Jwks, monkeypatch: pytest.MonkeyPatch) -> None:
    jwks.server.shutdown()
    jwks.server.server_close()
    new_container(monkeypatch)  # a new container: no keys fetched yet
    response = client.http.get("/registrations", headers=jwks.token("cs"))
    assert response.status_code == 503
    assert "Retry-After" in response.headers


def test_hs256_checks_the_issuer_when_one_is_set(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_ISSUER", ISSUER)
    new_container(monkeypatch)
    exp = int(time.time()) + 600
    for issuer, status in ((ISSUER, 200), ("https://other.example.com", 401)):
        claims = {"sub": "x", "iss": issuer, "exp": exp, "cognito:groups": ["cs"]}
        headers = {"Authorization": "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")}
        assert client.http.get("/registrations", headers=headers).status_code == status


def _hs256_signed_with(key: bytes, claims: dict[str, Any]) -> str:
    # PyJWT refuses to sign HS256 with a PEM key; forge it by hand, as an attacker would.
    import base64
    import hashlib
    import hmac

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = part(b'{"alg":"HS256","typ":"JWT"}') + "." + part(json.dumps(claims).encode())
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + part(signature)
