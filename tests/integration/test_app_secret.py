"""WHATSAPP_TOKEN and OTP_HASH_KEY from their secrets: OTP_SECRET_ARN, WHATSAPP_SECRET_ARN, or APP_SECRET_ARN
with both (moto's Secrets Manager)."""

import json

import pytest

from chalicelib.errors import ServiceUnavailableError
from chalicelib.platform.runtime import Runtime
from chalicelib.platform.secrets import Secrets, with_app_secret
from chalicelib.platform.settings import Settings
from tests.support.aws import CountingSecrets


def app_secret(secrets: CountingSecrets, **values: str) -> str:
    return str(secrets.client.create_secret(Name="registration-dev-app", SecretString=json.dumps(values))["ARN"])


def test_missing_settings_come_from_the_secret_read_once(secrets: CountingSecrets) -> None:
    arn = app_secret(secrets, WHATSAPP_TOKEN="wa-token", OTP_HASH_KEY="otp-key")
    settings = Settings(app_secret_arn=arn)
    container = Secrets(lambda: secrets)
    first = with_app_secret(settings, container)
    second = with_app_secret(settings, container)
    assert (first.whatsapp_token, first.otp_hash_key) == ("wa-token", "otp-key")
    assert second == first
    assert secrets.reads == 1, "cached per container"


def test_the_environment_wins_and_then_nothing_is_read(secrets: CountingSecrets) -> None:
    arn = app_secret(secrets, WHATSAPP_TOKEN="wa-token", OTP_HASH_KEY="otp-key")
    settings = Settings(app_secret_arn=arn, whatsapp_token="from-env", otp_hash_key="env-key")
    assert with_app_secret(settings, Secrets(lambda: secrets)) == settings
    assert secrets.reads == 0


def test_one_setting_from_the_environment_the_other_from_the_secret(secrets: CountingSecrets) -> None:
    arn = app_secret(secrets, WHATSAPP_TOKEN="wa-token", OTP_HASH_KEY="otp-key")
    resolved = with_app_secret(Settings(app_secret_arn=arn, whatsapp_token="from-env"), Secrets(lambda: secrets))
    assert (resolved.whatsapp_token, resolved.otp_hash_key) == ("from-env", "otp-key")


def test_without_an_arn_nothing_is_read(secrets: CountingSecrets) -> None:
    assert with_app_secret(Settings(), Secrets(lambda: secrets)) == Settings()
    assert secrets.reads == 0


def test_an_unreadable_secret_is_503_and_is_not_cached(
    secrets: CountingSecrets, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = "arn:aws:secretsmanager:ap-southeast-3:123456789012:secret:registration-dev-app-AbCdEf"
    monkeypatch.setenv("APP_SECRET_ARN", arn)
    container = Runtime(secrets_client=lambda: secrets)
    with pytest.raises(ServiceUnavailableError):
        _ = container.settings
    created = app_secret(secrets, WHATSAPP_TOKEN="wa-token", OTP_HASH_KEY="otp-key")
    monkeypatch.setenv("APP_SECRET_ARN", created)
    assert container.settings.otp_hash_key == "otp-key", "the next call tries again"


def test_each_function_reads_only_the_secret_it_is_given(secrets: CountingSecrets) -> None:
    """The worker and the sender are given the WhatsApp secret alone: the OTP key never reaches them."""
    whatsapp = str(
        secrets.client.create_secret(Name="registration-dev-whatsapp", SecretString='{"WHATSAPP_TOKEN": "wa"}')["ARN"]
    )
    otp = str(secrets.client.create_secret(Name="registration-dev-otp", SecretString='{"OTP_HASH_KEY": "k"}')["ARN"])
    worker = with_app_secret(Settings(whatsapp_secret_arn=whatsapp), Secrets(lambda: secrets))
    assert (worker.whatsapp_token, worker.otp_hash_key) == ("wa", None)
    assert secrets.reads == 1
    api = with_app_secret(Settings(whatsapp_secret_arn=whatsapp, otp_secret_arn=otp), Secrets(lambda: secrets))
    assert (api.whatsapp_token, api.otp_hash_key) == ("wa", "k")
