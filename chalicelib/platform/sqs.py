"""The SQS client (one per container: ``Runtime.sqs``), and the one way the code sends to a queue.

boto3 is imported at first use (it costs a Lambda's cold start hundreds of
milliseconds).  boto3 itself honours ``AWS_ENDPOINT_URL_SQS`` / ``AWS_ENDPOINT_URL``,
which is how a local queue (moto's server) is reached.
"""

import json
from typing import Any

from chalicelib.errors import ServiceUnavailableError


def make_client() -> Any:
    """A new SQS client with the API's timeouts; ``Runtime.sqs`` keeps one per container."""
    import boto3
    from botocore.config import Config

    # An API request waits for this send: fail fast (API Gateway gives up at 29 s).
    config = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 2})
    return boto3.client("sqs", config=config)


def send(sqs: Any, queue_url: str, body: dict[str, Any], attributes: dict[str, str]) -> str:
    """Send ``body`` as JSON with string message ``attributes``; the SQS message id.

    Raises ``ServiceUnavailableError`` when SQS cannot be reached or refuses the message.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        sent = sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=json.dumps(body),
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
            },
        )
    except (BotoCoreError, ClientError) as error:
        raise ServiceUnavailableError(
            "the customer queue is unavailable; nothing was changed, try again", {"cause": type(error).__name__}
        ) from error
    return str(sent["MessageId"])
