"""WhatsApp templates as data: each is well formed, and its create request is what the Graph API takes."""

import pytest

from chalicelib.message_templates import CUSTOMER_CREATED, REGISTRATION_OTP, TEMPLATE_BY_NAME, TEMPLATES, Template
from chalicelib.registrations import otp


def test_every_template_is_defined_once_by_name_and_language() -> None:
    assert len({(t.name, t.language) for t in TEMPLATES}) == len(TEMPLATES)
    assert set(TEMPLATE_BY_NAME) == {"registration_otp", "customer_created", "registration_status"}


def test_the_otp_template_is_the_one_the_code_sends_and_expires_with_the_code() -> None:
    assert REGISTRATION_OTP.name == otp.TEMPLATE
    assert REGISTRATION_OTP.code_expiration_minutes == otp.VALID_FOR.total_seconds() // 60
    payload = otp.message_payload("482913")
    assert REGISTRATION_OTP.problems(payload["components"], payload["language"]) == []


def test_components_fit_their_template_and_a_wrong_send_is_named() -> None:
    components = CUSTOMER_CREATED.components("Budi", "CUS-0000001", "INS-0000001")
    assert CUSTOMER_CREATED.problems(components, "id") == []
    assert CUSTOMER_CREATED.problems(components[:0], "en") == [
        "language 'en', the template is 'id'",
        "0 body parameters, the template has 3",
    ]
    two = [{"type": "body", "parameters": components[0]["parameters"][:2]}]
    assert CUSTOMER_CREATED.problems(two, "id") == ["2 body parameters, the template has 3"]
    assert REGISTRATION_OTP.problems(REGISTRATION_OTP.components("1")[:1], "id") == ["0 buttons, the template has 1"]
    with pytest.raises(ValueError, match="takes 3 parameters"):
        CUSTOMER_CREATED.components("Budi")


def test_create_requests_match_the_graph_api_shape() -> None:
    utility = CUSTOMER_CREATED.create_request()
    assert (utility["name"], utility["language"], utility["category"]) == ("customer_created", "id", "UTILITY")
    [body] = utility["components"]
    assert body == {
        "type": "BODY",
        "text": CUSTOMER_CREATED.body,
        "example": {"body_text": [list(CUSTOMER_CREATED.examples)]},
    }
    auth = REGISTRATION_OTP.create_request()
    assert auth["category"] == "AUTHENTICATION"
    # Meta writes an authentication template's body: the request carries no text.
    assert [c["type"] for c in auth["components"]] == ["BODY", "FOOTER", "BUTTONS"]
    assert "text" not in auth["components"][0]
    assert auth["components"][2]["buttons"][0]["otp_type"] == "COPY_CODE"


@pytest.mark.parametrize(
    ("body", "examples", "message"),
    [
        ("Halo {{2}}", ("a",), "in order"),
        ("Halo {{1}} {{2}}", ("a",), "2 parameters, 1 examples"),
    ],
)
def test_a_malformed_template_does_not_load(body: str, examples: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Template(name="x", language="id", category="UTILITY", body=body, examples=examples)
