"""AWS in tests: moto in-process, with a Secrets Manager client that counts its reads."""

from typing import Any

import boto3


class CountingSecrets:
    """Secrets Manager (moto, in-process) that counts GetSecretValue calls."""

    def __init__(self) -> None:
        self.client = boto3.client("secretsmanager")
        self.reads = 0

    def get_secret_value(self, **kwargs: Any) -> Any:
        self.reads += 1
        return self.client.get_secret_value(**kwargs)
