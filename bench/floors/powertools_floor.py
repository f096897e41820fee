"""The API floor on Powertools' ``APIGatewayRestResolver``: one pydantic-validated route, one query."""

import os
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from pydantic import BaseModel, Field

app = APIGatewayRestResolver()


class Page(BaseModel):
    limit: int = Field(default=20, ge=1, le=100)


@app.get("/packages")
def list_packages() -> Any:
    import psycopg

    page = Page.model_validate(dict(app.current_event.query_string_parameters or {}))
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        rows = conn.execute("SELECT id::text, name FROM packages WHERE is_active LIMIT %s", (page.limit,)).fetchall()
    return [{"id": row[0], "name": row[1]} for row in rows]


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
