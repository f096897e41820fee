"""`make whatsapp-templates`: prints the create requests; ``--apply`` posts them; the sink holds sends to them."""

import json
import subprocess
import sys

import pytest

from chalicelib.message_templates import CUSTOMER_CREATED, TEMPLATES
from chalicelib.notifications.whatsapp import WhatsAppClient, WhatsAppPermanentError
from devstack.whatsapp import FakeWhatsApp
from tests.conftest import ROOT


def test_print_writes_one_create_request_per_template() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/whatsapp_templates.py"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    decoder, text, documents = json.JSONDecoder(), result.stdout.strip(), []
    while text:
        document, end = decoder.raw_decode(text)
        documents.append(document)
        text = text[end:].strip()
    assert documents == [template.create_request() for template in TEMPLATES]


def test_apply_posts_every_template_and_the_sink_checks_sends_against_them() -> None:
    with FakeWhatsApp(token=None) as sink:
        env = {"PATH": "/usr/bin:/bin", "WHATSAPP_API_URL": sink.api_url, "WHATSAPP_BUSINESS_ACCOUNT_ID": "42",
               "WHATSAPP_TOKEN": "t"}  # fmt: skip
        result = subprocess.run(
            [sys.executable, "scripts/whatsapp_templates.py", "--apply"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        answers = [json.loads(line) for line in result.stdout.splitlines()]
        assert [(a["template"], a["http"], a["answer"]["status"]) for a in answers] == [
            (t.name, 200, "APPROVED") for t in TEMPLATES
        ]
        assert sink.templates == [template.create_request() for template in TEMPLATES]
        client = WhatsAppClient(sink.api_url, sink.phone_number_id, "t", timeout_s=2)
        good = CUSTOMER_CREATED.components("Budi", "CUS-0000001", "INS-0000001")
        assert client.send_template("+6281234567890", "customer_created", components=good).startswith("wamid.")
        with pytest.raises(WhatsAppPermanentError) as raised:
            client.send_template(
                "+6281234567890", "customer_created", components=CUSTOMER_CREATED.components(*"abc")[:0]
            )
        assert raised.value.code == 132000
