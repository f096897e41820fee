"""WHATSAPP_TOKEN and OTP_HASH_KEY from the secret at APP_SECRET_ARN (moto's Secrets Manager)."""

import json

import pytest

from chalicelib.errors import ServiceUnavailableError
from chalicelib.platform.runtime import Runtime
from chalicelib.platform.secrets import Secrets, with_app_secret
from chalicelib.platform.settings import Settings
from tests.integration.conftest import CountingSecrets


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
