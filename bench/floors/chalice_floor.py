"""The floor: the least a Chalice function can do for each job, to compare cold starts with.

One pydantic-validated route that opens a psycopg connection and runs one query;
an SQS handler that validates its message and runs one query; a plain function
that runs one query.  psycopg is imported at first use, as the real app does.
"""

import os
from typing import Any

from chalice.app import Chalice
from pydantic import BaseModel, Field

app = Chalice(app_name="floor")


class Page(BaseModel):
    limit: int = Field(default=20, ge=1, le=100)


class Message(BaseModel):
    type: str
    registration_id: str
    requested_by: str


def _query(sql: str, *params: Any) -> list[Any]:
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


@app.route("/packages", methods=["GET"])
def list_packages() -> Any:
    page = Page.model_validate(dict(app.current_request.query_params or {}))
    rows = _query("SELECT id::text, name FROM packages WHERE is_active LIMIT %s", page.limit)
    return [{"id": row[0], "name": row[1]} for row in rows]


@app.on_sqs_message(queue="create-customer", batch_size=10, name="customer_worker")
def customer_worker(event: Any) -> dict[str, Any]:
    for record in event:
        message = Message.model_validate_json(record.body)
        _query("SELECT status FROM customer_registrations WHERE id = %s", message.registration_id)
    return {"batchItemFailures": []}


@app.lambda_function(name="migrate")
def migrate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rows = _query("SELECT count(*) FROM pg_constraint WHERE conname = 'valid_status'")
    return {"ok": True, "action": event.get("action"), "constraints": rows[0][0]}
