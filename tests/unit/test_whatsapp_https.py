"""The WhatsApp token is a bearer token: outside the local stage it goes over https or not at all."""

import pytest

from chalicelib.notifications.whatsapp import WhatsAppClient
from chalicelib.platform.settings import ConfigurationError, Settings


def settings(url: str, stage: str) -> Settings:
    return Settings(whatsapp_api_url=url, whatsapp_phone_number_id="1", whatsapp_token="t", stage=stage)


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_plain_http_is_refused_outside_the_local_stage(stage: str) -> None:
    with pytest.raises(ConfigurationError, match="https"):
        WhatsAppClient.from_settings(settings("http://graph.example.com/v21.0", stage))
    assert WhatsAppClient.from_settings(settings("https://graph.facebook.com/v21.0", stage))


def test_the_local_sink_may_be_plain_http() -> None:
    assert WhatsAppClient.from_settings(settings("http://127.0.0.1:8025/v21.0", "local"))
    assert Settings.from_env({"STAGE": "prod"}).stage == "prod"
    assert Settings.from_env({}).stage == "local"
