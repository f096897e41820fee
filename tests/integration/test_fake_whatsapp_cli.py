"""`python -m devstack.whatsapp`: the local stack's WhatsApp sink, as a process."""

import json
import subprocess
import sys
from pathlib import Path

from chalicelib.notifications.whatsapp import WhatsAppClient

ROOT = Path(__file__).resolve().parents[2]


def test_the_cli_logs_one_json_line_per_message_with_the_phone_masked() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.whatsapp", "--port", "0", "--token", "local"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        assert process.stdout is not None
        banner = process.stderr.readline()
        api_url = banner.strip().rsplit("WHATSAPP_API_URL=", 1)[1]
        client = WhatsAppClient(api_url, "100000000000001", "local", timeout_s=2)
        components = [{"type": "body", "parameters": [{"type": "text", "text": "482913"}]}]

        message_id = client.send_template("+6281234567890", "registration_otp", components=components)

        line = json.loads(process.stdout.readline())
    finally:
        process.terminate()
        process.wait(timeout=5)
    assert line["to"] == "+62812****7890"
    assert "6281234567890" not in json.dumps(line)
    assert (line["template"], line["language"], line["message_id"]) == ("registration_otp", "id", message_id)
    assert line["components"] == components  # locally, this is how a developer reads the code
