"""The WhatsApp client against the fake Cloud API (a real HTTP server on loopback)."""

import email.utils
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.notifications.whatsapp import (
    WhatsAppClient,
    WhatsAppError,
    WhatsAppOutcomeUnknownError,
    WhatsAppPermanentError,
    WhatsAppRetryableError,
    _retry_after_s,
)
from chalicelib.platform.settings import ConfigurationError, Settings
from devstack.whatsapp import FakeWhatsApp, Reply, mask_phone

PHONE = "+6281234567890"
COMPONENTS = [{"type": "body", "parameters": [{"type": "text", "text": "Budi"}]}]


@pytest.fixture
def fake() -> Iterator[FakeWhatsApp]:
    with FakeWhatsApp() as server:
        yield server


@pytest.fixture
def client(fake: FakeWhatsApp) -> WhatsAppClient:
    return WhatsAppClient(fake.api_url, fake.phone_number_id, "test-token", timeout_s=0.3)


def test_sends_the_cloud_api_body_and_returns_the_wamid(fake: FakeWhatsApp, client: WhatsAppClient) -> None:
    message_id = client.send_template(PHONE, "customer_created", components=COMPONENTS, language="en")

    [request] = fake.requests
    assert message_id.startswith("wamid.")
    assert request.message_id == message_id
    assert request.path == f"/v21.0/{fake.phone_number_id}/messages"
    assert request.authorization == "Bearer test-token"
    assert request.body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "6281234567890",
        "type": "template",
        "template": {"name": "customer_created", "language": {"code": "en"}, "components": COMPONENTS},
    }


def test_language_defaults_to_indonesian(fake: FakeWhatsApp, client: WhatsAppClient) -> None:
    client.send_template(PHONE, "customer_created", components=[])
    assert fake.requests[0].body["template"]["language"] == {"code": "id"}


@pytest.mark.parametrize(
    ("reply", "error_class", "code"),
    [
        (Reply.http(429), WhatsAppRetryableError, None),
        (Reply.http(500), WhatsAppRetryableError, None),
        (Reply.http(503), WhatsAppRetryableError, None),
        (Reply.error(130429), WhatsAppRetryableError, 130429),
        (Reply.error(131056), WhatsAppRetryableError, 131056),
        (Reply.error(80007), WhatsAppRetryableError, 80007),
        (Reply.error(4), WhatsAppRetryableError, 4),
        (Reply.error(131000), WhatsAppRetryableError, 131000),
        (Reply.error(133004), WhatsAppRetryableError, 133004),
        (Reply.error(190), WhatsAppRetryableError, 190),
        (Reply.error(131026), WhatsAppPermanentError, 131026),
        (Reply.error(131047), WhatsAppPermanentError, 131047),
        (Reply.error(132000), WhatsAppPermanentError, 132000),
        (Reply.error(132001), WhatsAppPermanentError, 132001),
        (Reply.error(100), WhatsAppPermanentError, 100),
        (Reply.error(999999), WhatsAppPermanentError, 999999),  # an unknown code on HTTP 400
        (Reply.error(999999, status=502), WhatsAppRetryableError, 999999),  # an unknown code on a 5xx
        (Reply.http(404), WhatsAppPermanentError, None),
    ],
)
def test_failures_are_classified_by_code_then_http_status(
    fake: FakeWhatsApp, client: WhatsAppClient, reply: Reply, error_class: type[WhatsAppError], code: int | None
) -> None:
    fake.queue(reply)
    with pytest.raises(error_class) as raised:
        client.send_template(PHONE, "customer_created", components=COMPONENTS)
    assert type(raised.value) is error_class
    assert raised.value.code == code
    assert raised.value.http_status == reply.status
    if code is not None:
        assert f"code {code}" in raised.value.describe()


def test_retry_after_header_is_honoured(fake: FakeWhatsApp, client: WhatsAppClient) -> None:
    fake.queue(Reply.http(429, retry_after=17))
    with pytest.raises(WhatsAppRetryableError) as raised:
        client.send_template(PHONE, "customer_created", components=[])
    assert raised.value.retry_after_s == 17


def test_retry_after_reads_seconds_and_http_dates() -> None:
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert _retry_after_s("5") == 5
    assert 55 <= (_retry_after_s(in_a_minute) or 0) <= 61
    assert _retry_after_s("soon") is None
    assert _retry_after_s(None) is None


def test_a_slow_answer_is_outcome_unknown_within_the_timeout(fake: FakeWhatsApp, client: WhatsAppClient) -> None:
    fake.queue(Reply.slow(2.0))
    started = time.monotonic()
    with pytest.raises(WhatsAppOutcomeUnknownError, match="timed out"):
        client.send_template(PHONE, "customer_created", components=[])
    assert time.monotonic() - started < 1.5
    assert len(fake.requests) == 1  # it did arrive: that is why it is not blindly resent


def test_a_connection_dropped_after_sending_is_outcome_unknown(fake: FakeWhatsApp, client: WhatsAppClient) -> None:
    fake.queue(Reply.dropped())
    with pytest.raises(WhatsAppOutcomeUnknownError, match="connection lost"):
        client.send_template(PHONE, "customer_created", components=[])


def test_connection_refused_is_retryable(fake: FakeWhatsApp, client: WhatsAppClient) -> None:
    fake.stop()
    with pytest.raises(WhatsAppRetryableError, match="could not connect"):
        client.send_template(PHONE, "customer_created", components=[])


def test_a_wrong_token_is_retryable_once_an_operator_fixes_it(fake: FakeWhatsApp) -> None:
    client = WhatsAppClient(fake.api_url, fake.phone_number_id, "expired", timeout_s=0.3)
    with pytest.raises(WhatsAppRetryableError) as raised:
        client.send_template(PHONE, "customer_created", components=[])
    assert (raised.value.http_status, raised.value.code) == (401, 190)


def test_a_recipient_not_in_e164_is_refused_without_a_request(fake: FakeWhatsApp, client: WhatsAppClient) -> None:
    with pytest.raises(WhatsAppPermanentError, match=r"E\.164"):
        client.send_template("081234567890", "customer_created", components=[])
    assert fake.requests == []


def test_error_text_names_no_phone_number(fake: FakeWhatsApp, client: WhatsAppClient) -> None:
    fake.queue(Reply.error(131026))
    with pytest.raises(WhatsAppPermanentError) as raised:
        client.send_template(PHONE, "customer_created", components=COMPONENTS)
    assert "81234567890" not in str(raised.value) + raised.value.describe()


def test_settings_are_read_from_the_pinned_names() -> None:
    env = {
        "WHATSAPP_API_URL": "https://graph.facebook.com/v21.0",
        "WHATSAPP_PHONE_NUMBER_ID": "123",
        "WHATSAPP_TOKEN": "secret",
        "WHATSAPP_TIMEOUT_S": "2.5",
    }
    settings = Settings.from_env(env)
    assert (settings.whatsapp_api_url, settings.whatsapp_phone_number_id, settings.whatsapp_token) == (
        "https://graph.facebook.com/v21.0",
        "123",
        "secret",
    )
    assert WhatsAppClient.from_settings(settings).timeout_s == 2.5
    assert Settings.from_env({}).whatsapp_timeout_s == 5.0


def test_missing_settings_are_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="WHATSAPP_TOKEN"):
        WhatsAppClient.from_settings(Settings(whatsapp_api_url="https://x/v21.0", whatsapp_phone_number_id="1"))
    with pytest.raises(ConfigurationError, match="http"):
        WhatsAppClient("graph.facebook.com", "1", "t")


def _post(fake: FakeWhatsApp, body: Any, token: str = "test-token") -> tuple[int, dict[str, Any]]:  # noqa: S107
    request = urllib.request.Request(  # noqa: S310 (loopback http)
        f"{fake.api_url}/{fake.phone_number_id}/messages",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize(
    "body",
    [
        {"messaging_product": "sms", "to": "6281234567890", "type": "template", "template": {}},
        {"messaging_product": "whatsapp", "to": "+6281234567890", "type": "template"},
        {"messaging_product": "whatsapp", "to": "6281234567890", "type": "text", "text": {"body": "hi"}},
        {"messaging_product": "whatsapp", "to": "6281234567890", "type": "template", "template": {"name": "x"}},
    ],
)
def test_the_fake_refuses_a_wrong_shape_like_the_cloud_api(fake: FakeWhatsApp, body: dict[str, Any]) -> None:
    status, document = _post(fake, body)
    assert status == 400
    error = document["error"]
    assert error["code"] == 100
    assert error["type"] == "OAuthException"
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert error["error_data"]["details"]
    assert error["fbtrace_id"]
    assert fake.delivered == []


def test_the_fake_refuses_a_wrong_token(fake: FakeWhatsApp) -> None:
    status, document = _post(fake, {}, token="nope")
    assert (status, document["error"]["code"]) == (401, 190)


def test_the_fake_answers_success_like_the_cloud_api(fake: FakeWhatsApp) -> None:
    body = {
        "messaging_product": "whatsapp",
        "to": "6281234567890",
        "type": "template",
        "template": {"name": "customer_created", "language": {"code": "id"}},
    }
    status, document = _post(fake, body)
    assert status == 200
    assert document["messaging_product"] == "whatsapp"
    assert document["contacts"] == [{"input": "6281234567890", "wa_id": "6281234567890"}]
    assert document["messages"][0]["id"].startswith("wamid.")


def test_mask_phone_hides_the_middle() -> None:
    assert mask_phone("6281234567890") == "+62812****7890"
    assert mask_phone("+6281234567890") == "+62812****7890"
