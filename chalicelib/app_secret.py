"""The secrets that are not the database's, ``WHATSAPP_TOKEN`` and ``OTP_HASH_KEY``, from Secrets Manager.

Why Secrets Manager rather than CloudFormation parameters: a value passed as a
parameter ends up in the functions' environment, readable by anyone allowed
``lambda:GetFunctionConfiguration`` and in the console; a secret is readable only
by the roles whose policy names it (``.chalice/policy-*.json``), is encrypted with
KMS, and can be rotated (a new WhatsApp token) without a deploy.  It costs one
``GetSecretValue`` per cold container, the first time a setting is read.

``APP_SECRET_ARN`` names a JSON secret ``{"WHATSAPP_TOKEN": ..., "OTP_HASH_KEY": ...}``.
A variable set in the environment wins, so local runs and tests need no secret.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

from chalicelib import db
from chalicelib.config import Settings

# Settings field -> its key in the secret (the environment variable's name).
SECRET_KEY_BY_FIELD = {"whatsapp_token": "WHATSAPP_TOKEN", "otp_hash_key": "OTP_HASH_KEY"}


def with_app_secret(settings: Settings, client: Callable[[], Any] | None = None) -> Settings:
    """``settings`` with what the environment left unset filled in from the secret at ``APP_SECRET_ARN``.

    Reads nothing when ``APP_SECRET_ARN`` is unset or nothing is missing.  Raises
    ``ServiceUnavailableError`` when the secret cannot be read.
    """
    missing = [name for name in SECRET_KEY_BY_FIELD if getattr(settings, name) is None]
    if not settings.app_secret_arn or not missing:
        return settings
    secret = db.read_secret(settings.app_secret_arn, client)
    return dataclasses.replace(
        settings,
        whatsapp_token=settings.whatsapp_token or _text(secret, "whatsapp_token"),
        otp_hash_key=settings.otp_hash_key or _text(secret, "otp_hash_key"),
    )


def _text(secret: dict[str, Any], field: str) -> str | None:
    value = secret.get(SECRET_KEY_BY_FIELD[field])
    return str(value) if value else None
