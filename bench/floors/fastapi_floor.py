"""The API floor on FastAPI behind Mangum: one pydantic-validated route, one query."""

import os
from typing import Annotated, Any

from fastapi import FastAPI, Query
from mangum import Mangum

api = FastAPI()


@api.get("/packages")
def list_packages(limit: Annotated[int, Query(ge=1, le=100)] = 20) -> Any:
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        rows = conn.execute("SELECT id::text, name FROM packages WHERE is_active LIMIT %s", (limit,)).fetchall()
    return [{"id": row[0], "name": row[1]} for row in rows]


handler = Mangum(api, lifespan="off")
