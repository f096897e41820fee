"""Secrets Manager: the JSON secrets a container reads (the database's, the app's), cached per container.

What is not the database's lives in one secret per key, so that each function is given
(and its IAM policy names) only what it uses: ``OTP_SECRET_ARN`` holds ``OTP_HASH_KEY``
(the API hashes one-time codes), ``WHATSAPP_SECRET_ARN`` holds ``WHATSAPP_TOKEN`` (the
API, the worker and the sender send messages).  ``APP_SECRET_ARN``, one secret with
both, is still read where it is set.
Why Secrets Manager rather than CloudFormation parameters: a value passed as a
parameter ends up in the functions' environment, readable by anyone allowed
``lambda:GetFunctionConfiguration`` and in the console; a secret is readable only
by the roles whose policy names it (``.chalice/policy-*.json``), is encrypted with
KMS, and can be rotated (a new WhatsApp token) without a deploy.  It costs one
``GetSecretValue`` per cold container, the first time a setting is read.

``OTP_SECRET_ARN`` names a JSON secret ``{"OTP_HASH_KEY": ...}``, ``WHATSAPP_SECRET_ARN``
one ``{"WHATSAPP_TOKEN": ...}``.  A variable set in the environment wins, so local runs
and tests need no secret.
"""

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

from chalicelib.errors import ServiceUnavailableError
from chalicelib.platform.settings import Settings

# Settings field -> its key in the secret (the environment variable's name).
SECRET_KEY_BY_FIELD = {"whatsapp_token": "WHATSAPP_TOKEN", "otp_hash_key": "OTP_HASH_KEY"}
# Settings field -> the settings that name a secret holding it, first found first read.
SECRET_ARN_FIELDS_BY_FIELD = {
    "whatsapp_token": ("whatsapp_secret_arn", "app_secret_arn"),
    "otp_hash_key": ("otp_secret_arn", "app_secret_arn"),
}
SECRET_TTL_S = 900.0


class Secrets:
    """JSON secrets by ARN, each read once per ``SECRET_TTL_S``; the client is built at first read.

    A warm Lambda that reconnects should not pay a Secrets Manager call each time.
    After a rotation the old password fails to connect, and ``forget`` makes the
    next attempt read the new one.
    """

    def __init__(self, client: Callable[[], Any] | None = None) -> None:
        self._client = client or _default_client
        self._by_arn: dict[str, tuple[float, dict[str, Any]]] = {}

    def read(self, arn: str) -> dict[str, Any]:
        """The JSON secret at ``arn``; raises ``ServiceUnavailableError`` when it cannot be read."""
        cached = self._by_arn.get(arn)
        if cached is not None and time.monotonic() - cached[0] < SECRET_TTL_S:
            return cached[1]
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            secret: dict[str, Any] = json.loads(self._client().get_secret_value(SecretId=arn)["SecretString"])
        except (BotoCoreError, ClientError) as error:
            # Both the database's secret and the app's come through here.
            raise ServiceUnavailableError("a secret cannot be read from Secrets Manager; try again") from error
        self._by_arn[arn] = (time.monotonic(), secret)
        return secret

    def forget(self) -> None:
        """Drop cached secrets, e.g. after a connection attempt failed."""
        self._by_arn.clear()


def with_app_secret(settings: Settings, secrets: Secrets) -> Settings:
    """``settings`` with what the environment left unset filled in from the secret that holds it
    (``OTP_SECRET_ARN``, ``WHATSAPP_SECRET_ARN``, or ``APP_SECRET_ARN`` with both).

    Reads nothing for a setting that is set, or whose secret is not named (that function
    does not use it).  Raises ``ServiceUnavailableError`` when a secret cannot be read.
    """
    found: dict[str, str | None] = {}
    for name, arn_fields in SECRET_ARN_FIELDS_BY_FIELD.items():
        arn = next((a for a in (getattr(settings, f) for f in arn_fields) if a), None)
        if getattr(settings, name) is None and arn:
            found[name] = _text(secrets.read(arn), name)
    if not found:
        return settings
    return dataclasses.replace(
        settings,
        whatsapp_token=found.get("whatsapp_token", settings.whatsapp_token),
        otp_hash_key=found.get("otp_hash_key", settings.otp_hash_key),
    )


def _text(secret: dict[str, Any], field: str) -> str | None:
    value = secret.get(SECRET_KEY_BY_FIELD[field])
    return str(value) if value else None


def _default_client() -> Any:
    import boto3

    return boto3.client("secretsmanager")
