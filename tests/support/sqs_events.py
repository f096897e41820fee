"""SQS events shaped like the ones Lambda delivers, each record with its own ``messageId``.

(``chalice.test``'s generator gives every record the same id, which would hide
exactly the bugs partial batch responses are about.)
"""

import hashlib
import json
import time
import uuid
from typing import Any

REGION = "ap-southeast-3"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:123456789012:create-customer"


def create_customer_body(registration_id: str, requested_by: str = "approver-1") -> str:
    return json.dumps({"type": "create_customer", "registration_id": registration_id, "requested_by": requested_by})


def record(
    body: str,
    message_id: str | None = None,
    attributes: dict[str, str] | None = None,
    receive_count: int = 1,
) -> dict[str, Any]:
    """One record as Lambda's SQS event source mapping delivers it."""
    now_ms = str(int(time.time() * 1000))
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": uuid.uuid4().hex,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": now_ms,
            "SenderId": "AROAEXAMPLE:registration-backend-dev",
            "ApproximateFirstReceiveTimestamp": now_ms,
        },
        "messageAttributes": {
            name: {"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": "String"}
            for name, value in (attributes or {}).items()
        },
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": REGION,
    }


def from_received(message: dict[str, Any]) -> dict[str, Any]:
    """A record for a message as ``ReceiveMessage`` returned it (same id, body and string attributes)."""
    attributes = {name: value["StringValue"] for name, value in message.get("MessageAttributes", {}).items()}
    return record(message["Body"], message_id=message["MessageId"], attributes=attributes)


def event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}
