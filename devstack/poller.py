"""What Lambda's SQS event source mapping does, for a local queue: long-poll, invoke, delete what succeeded.

Messages become a Lambda-shaped SQS event (each record with its own ``messageId``,
receipt handle, receive count and attributes) and go to the handler, e.g.
``app.customer_worker``.  Records the handler names in ``batchItemFailures`` are
left on the queue: they come back after the visibility timeout, and the queue's
redrive policy moves them to the dead-letter queue after ``maxReceiveCount``
receives, as in AWS.  A handler that raises fails the whole batch, as in AWS.
"""

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

log = logging.getLogger("devstack.poller")

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class Batch:
    """What one poll did: how many messages it received, deleted, and left for redelivery."""

    received: int = 0
    deleted: int = 0
    failed: int = 0


def poll_once(sqs: Any, queue_url: str, handler: Handler, *, wait_s: int = 5, batch_size: int = 10) -> Batch:
    """Receive up to ``batch_size`` messages (waiting up to ``wait_s``), hand them to ``handler``, settle them."""
    received = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=batch_size,
        WaitTimeSeconds=wait_s,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])
    if not received:
        return Batch()
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    event = to_event(received, queue_arn)
    try:
        answer = handler(event, lambda_context("customer_worker"))
        failed_ids = {item["itemIdentifier"] for item in (answer or {}).get("batchItemFailures", [])}
    except Exception:
        log.exception("the handler raised: the whole batch will be received again")
        return Batch(received=len(received), failed=len(received))
    done = [m for m in received if m["MessageId"] not in failed_ids]
    for start in range(0, len(done), 10):
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])]
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
    return Batch(received=len(received), deleted=len(done), failed=len(received) - len(done))


def to_event(messages: list[Mapping[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda would deliver for ``messages`` as ``ReceiveMessage`` returned them."""
    region = queue_arn.split(":")[3]
    return {"Records": [_record(message, queue_arn, region) for message in messages]}


def _record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    body = str(message["Body"])
    attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.get("DataType", "String"),
        }
        for name, value in message.get("MessageAttributes", {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def lambda_context(function_name: str, timeout_s: float = 60.0) -> Any:
    """Enough of a Lambda context object for handlers that log its request id."""
    deadline = time.monotonic() + timeout_s
    return SimpleNamespace(
        aws_request_id=str(uuid.uuid4()),
        function_name=function_name,
        memory_limit_in_mb=512,
        get_remaining_time_in_millis=lambda: int(max(0.0, deadline - time.monotonic()) * 1000),
    )


def scheduled_event() -> dict[str, Any]:
    """A CloudWatch/EventBridge scheduled event, as ``@app.schedule`` handlers receive it."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": "ap-southeast-3",
        "resources": ["arn:aws:events:ap-southeast-3:123456789012:rule/local-send_notifications"],
        "detail": {},
    }
