"""Read, in one round trip, everything verify compares: history, CHECKs, defaults, indexes.

One catalog for every rule: with ``whole_schema`` the round trip reads every
object of the schema (``schema``), and the CHECKs, columns and indexes the
contract rules look at are views of those same rows, not a second reading.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.migrate.schema import Schema, schema_query

if TYPE_CHECKING:
    import psycopg

HISTORY_TABLE = "schema_migrations"

_HISTORY = f"""(
    SELECT coalesce(jsonb_agg(jsonb_build_object('name', name, 'checksum', checksum) ORDER BY name), '[]'::jsonb)
      FROM {HISTORY_TABLE}
)"""

# PostgreSQL 18 added NOT ENFORCED constraints (pg_constraint.conenforced); older
# servers enforce every CHECK.
_ENFORCED_18 = "c.conenforced"
_ENFORCED_OLD = "true"

_QUERY = """
SELECT
    current_database() AS database,
    current_setting('server_version') AS server_version,
    {history} AS history,
    (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'table', r.relname,
                'name', c.conname,
                'definition', pg_get_constraintdef(c.oid),
                'validated', c.convalidated,
                'enforced', {enforced},
                'columns', (SELECT coalesce(jsonb_agg(a.attname::text ORDER BY a.attnum), '[]'::jsonb)
                              FROM pg_attribute a
                             WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)))
            ORDER BY r.relname, c.conname), '[]'::jsonb)
       FROM pg_constraint c
       JOIN pg_class r ON r.oid = c.conrelid
      WHERE c.contype = 'c'
        AND r.relnamespace = current_schema()::regnamespace
        AND r.relname = ANY (%(tables)s)) AS checks,
    (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'table', r.relname,
                'column', a.attname,
                'type', format_type(a.atttypid, a.atttypmod),
                'default', pg_get_expr(d.adbin, d.adrelid))
            ORDER BY r.relname, a.attnum), '[]'::jsonb)
       FROM pg_attribute a
       JOIN pg_class r ON r.oid = a.attrelid
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE r.relnamespace = current_schema()::regnamespace
        AND r.relkind IN ('r', 'p')
        AND r.relname = ANY (%(tables)s)
        AND a.attnum > 0
        AND NOT a.attisdropped) AS columns,
    (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'table', r.relname,
                'name', ic.relname,
                'definition', pg_get_indexdef(i.indexrelid),
                'predicate', pg_get_expr(i.indpred, i.indrelid),
                'valid', i.indisvalid AND i.indisready)
            ORDER BY r.relname, ic.relname), '[]'::jsonb)
       FROM pg_index i
       JOIN pg_class ic ON ic.oid = i.indexrelid
       JOIN pg_class r ON r.oid = i.indrelid
      WHERE r.relnamespace = current_schema()::regnamespace
        AND r.relname = ANY (%(tables)s)) AS indexes,
    {schema} AS schema
"""

# The whole-schema catalog: the narrow lists above are derived from its objects.
_WHOLE = """
SELECT
    current_database() AS database,
    current_setting('server_version') AS server_version,
    {history} AS history,
    NULL::jsonb, NULL::jsonb, NULL::jsonb,
    {schema} AS schema
"""


@dataclass(frozen=True)
class Catalog:
    """What the live database says, as plain data (``history`` None: no history table)."""

    database: str
    server_version: str
    history: dict[str, str] | None
    checks: list[dict[str, Any]]
    columns: list[dict[str, Any]]
    indexes: list[dict[str, Any]]
    queries: int
    schema: "Schema | None" = None


def read_catalog(conn: "psycopg.Connection[Any]", tables: list[str], *, whole_schema: bool = False) -> Catalog:
    """One catalog round trip (two when the history table does not exist yet).

    ``whole_schema``: the same round trip also reads every object of the schema
    (``schema.read_schema``'s query), for the comparison with the migrations.
    """
    import psycopg

    enforced = _ENFORCED_18 if conn.info.server_version >= 180000 else _ENFORCED_OLD
    schema = f"({schema_query(conn.info.server_version)})" if whole_schema else "NULL::jsonb"
    query = _WHOLE if whole_schema else _QUERY
    queries = 1
    # The connection is in autocommit: one statement, one round trip, and a
    # missing history table leaves no failed transaction behind.
    try:
        row = conn.execute(
            query.format(history=_HISTORY, enforced=enforced, schema=schema), {"tables": tables}
        ).fetchone()
    except psycopg.errors.UndefinedTable:
        queries += 1
        row = conn.execute(
            query.format(history="NULL::jsonb", enforced=enforced, schema=schema), {"tables": tables}
        ).fetchone()
    if row is None:  # a SELECT without FROM always returns one row
        raise RuntimeError("the catalog query returned no row")
    database, server_version, history, checks, columns, indexes, objects = row
    if objects is not None:
        checks, columns, indexes = narrow(objects)
    return Catalog(
        database=database,
        server_version=server_version,
        history=None if history is None else {item["name"]: item["checksum"] for item in history},
        checks=checks,
        columns=columns,
        indexes=indexes,
        queries=queries,
        schema=None if objects is None else Schema(objects),
    )


def narrow(objects: dict[str, list[dict[str, Any]]]) -> tuple[list[Any], list[Any], list[Any]]:
    """The contract rules' CHECKs, table columns and indexes, as views of the whole schema's rows."""
    tables = {r["table"] for r in objects["relations"] if r["relkind"] in ("r", "p")}
    checks = [
        {key: c[key] for key in ("table", "name", "definition", "validated", "enforced", "columns")}
        for c in objects["constraints"]
        if c["type"] == "c" and c["table"] in tables
    ]
    columns = [
        {"table": c["table"], "column": c["name"], "type": c["type"], "default": c["default"]}
        for c in objects["columns"]
        if c["table"] in tables
    ]
    indexes = [
        {key: i[key] for key in ("table", "name", "definition", "predicate", "valid")}
        for i in objects["indexes"]
        if i["table"] in tables
    ]
    return checks, columns, indexes
