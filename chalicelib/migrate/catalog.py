"""Read, in one round trip, everything verify compares: history, CHECKs, defaults, indexes."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
        AND r.relname = ANY (%(tables)s)) AS indexes
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


def read_catalog(conn: "psycopg.Connection[Any]", tables: list[str]) -> Catalog:
    """One catalog round trip (two when the history table does not exist yet)."""
    import psycopg

    enforced = _ENFORCED_18 if conn.info.server_version >= 180000 else _ENFORCED_OLD
    queries = 1
    # The connection is in autocommit: one statement, one round trip, and a
    # missing history table leaves no failed transaction behind.
    try:
        row = conn.execute(_QUERY.format(history=_HISTORY, enforced=enforced), {"tables": tables}).fetchone()
    except psycopg.errors.UndefinedTable:
        queries += 1
        row = conn.execute(_QUERY.format(history="NULL::jsonb", enforced=enforced), {"tables": tables}).fetchone()
    if row is None:  # a SELECT without FROM always returns one row
        raise RuntimeError("the catalog query returned no row")
    database, server_version, history, checks, columns, indexes = row
    return Catalog(
        database=database,
        server_version=server_version,
        history=None if history is None else {item["name"]: item["checksum"] for item in history},
        checks=checks,
        columns=columns,
        indexes=indexes,
        queries=queries,
    )
