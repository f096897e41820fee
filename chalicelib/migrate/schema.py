"""Read the application's whole schema from the catalog, in one round trip, as plain data.

The same query reads the live database and the scratch database the migrations
were replayed into.  Both are on one server, so every definition below is
rendered by the same PostgreSQL (``format_type``, ``pg_get_expr``,
``pg_get_constraintdef``, ``pg_get_indexdef``, ``pg_get_triggerdef``): equal
meaning gives equal text, and the few places where equal meaning can still be
spelled two ways (a reordered ``IN`` list, a default) are judged by
``schema_compare``, not by the text.

Owners are read as ``migrate user`` when they are the role that owns the history
table (the role running apply; the replay runs as the role running verify, which
owns its scratch history table), so a grant reads the same in both databases.
Extensions in the schema are read by name and version; the objects that belong
to an extension, NOT NULL constraints (PostgreSQL 18 lists
them; nullability is compared on the column) and indexes that back a constraint
(compared as the constraint) are left out.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

MIGRATE_USER = "migrate user"

_QUERY = """
WITH ns AS (SELECT current_schema()::regnamespace::oid AS oid),
-- The migrate user: the owner of the history table (the watch reads as another role), else whoever runs this.
me AS (SELECT coalesce((SELECT c.relowner FROM pg_class c, ns
                         WHERE c.relname = 'schema_migrations' AND c.relnamespace = ns.oid),
                       (SELECT oid FROM pg_roles WHERE rolname = current_user)) AS oid),
ext AS (SELECT classid, objid FROM pg_depend WHERE deptype = 'e'),
rel AS (
    SELECT c.oid, c.relname, c.relkind, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity,
           c.relowner, c.relacl
      FROM pg_class c, ns
     WHERE c.relnamespace = ns.oid
       AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
       -- migrate's own store of the expected schema (``stored``): bookkeeping, not the application's
       AND c.relname <> 'migrate_expected_schema'
       AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_class'::regclass AND ext.objid = c.oid)
),
tab AS (SELECT * FROM rel WHERE relkind <> 'S')
SELECT jsonb_build_object(
  'relations', (SELECT coalesce(jsonb_agg(jsonb_build_object(
        'table', r.relname,
        'relkind', r.relkind,
        'persistence', r.relpersistence,
        'rls', r.relrowsecurity,
        'force_rls', r.relforcerowsecurity,
        'owner', CASE WHEN r.relowner = (SELECT oid FROM me) THEN 'migrate user'
                      ELSE pg_get_userbyid(r.relowner)::text END,
        'view', CASE WHEN r.relkind IN ('v', 'm') THEN pg_get_viewdef(r.oid) END,
        'acl', (SELECT coalesce(jsonb_agg(DISTINCT
                    CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                         WHEN a.grantee = r.relowner THEN 'OWNER'
                         WHEN a.grantee = (SELECT oid FROM me) THEN 'migrate user'
                         ELSE pg_get_userbyid(a.grantee)::text END
                    || ':' || a.privilege_type || CASE WHEN a.is_grantable THEN '*' ELSE '' END), '[]')
                  FROM aclexplode(coalesce(r.relacl, acldefault(
                       CASE WHEN r.relkind = 'S' THEN 's' ELSE 'r' END::"char", r.relowner))) a))
        ORDER BY r.relname), '[]') FROM tab r),
  'columns', (SELECT coalesce(jsonb_agg(jsonb_build_object(
        'table', t.relname,
        'name', a.attname,
        'type', format_type(a.atttypid, a.atttypmod),
        'not_null', a.attnotnull,
        'default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
        'generated', CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END,
        'identity', a.attidentity,
        'collation', CASE WHEN a.attcollation <> ty.typcollation THEN co.collname::text END)
        ORDER BY t.relname, a.attnum), '[]')
       FROM tab t
       JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
       JOIN pg_type ty ON ty.oid = a.atttypid
       LEFT JOIN pg_collation co ON co.oid = a.attcollation
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum),
  'constraints', (SELECT coalesce(jsonb_agg(jsonb_build_object(
        'table', t.relname,
        'name', c.conname,
        'type', c.contype,
        'definition', pg_get_constraintdef(c.oid),
        'validated', c.convalidated,
        'enforced', {enforced},
        -- DISABLE TRIGGER ALL switches off the triggers that enforce foreign keys.
        'disabled_on', (SELECT coalesce(jsonb_agg(DISTINCT gt.relname::text), '[]')
                          FROM pg_trigger g JOIN pg_class gt ON gt.oid = g.tgrelid
                         WHERE g.tgconstraint = c.oid AND g.tgenabled = 'D'),
        'columns', (SELECT coalesce(jsonb_agg(a.attname::text ORDER BY a.attnum), '[]')
                      FROM pg_attribute a WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)))
        ORDER BY t.relname, c.conname), '[]')
       FROM pg_constraint c JOIN tab t ON t.oid = c.conrelid
      WHERE c.contype <> 'n'),
  'indexes', (SELECT coalesce(jsonb_agg(jsonb_build_object(
        'table', t.relname,
        'name', ic.relname,
        'definition', pg_get_indexdef(i.indexrelid),
        'predicate', pg_get_expr(i.indpred, i.indrelid),
        'valid', i.indisvalid AND i.indisready)
        ORDER BY t.relname, ic.relname), '[]')
       FROM pg_index i JOIN tab t ON t.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
      WHERE NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid
                           AND c.contype IN ('p', 'u', 'x'))),
  'triggers', (SELECT coalesce(jsonb_agg(jsonb_build_object(
        'table', t.relname,
        'name', g.tgname,
        'definition', pg_get_triggerdef(g.oid),
        'enabled', g.tgenabled)
        ORDER BY t.relname, g.tgname), '[]')
       FROM pg_trigger g JOIN tab t ON t.oid = g.tgrelid
      WHERE NOT g.tgisinternal),
  'policies', (SELECT coalesce(jsonb_agg(jsonb_build_object(
        'table', t.relname,
        'name', p.polname,
        'command', p.polcmd,
        'permissive', p.polpermissive,
        'roles', (SELECT coalesce(jsonb_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r)::text END
                                            ORDER BY 1), '[]') FROM unnest(p.polroles) AS r),
        'using', pg_get_expr(p.polqual, p.polrelid),
        'with_check', pg_get_expr(p.polwithcheck, p.polrelid))
        ORDER BY t.relname, p.polname), '[]')
       FROM pg_policy p JOIN tab t ON t.oid = p.polrelid),
  'sequences', (SELECT coalesce(jsonb_agg(jsonb_build_object(
        'name', r.relname,
        'type', format_type(s.seqtypid, NULL),
        'start', s.seqstart,
        'increment', s.seqincrement,
        'min', s.seqmin,
        'max', s.seqmax,
        'cache', s.seqcache,
        'cycle', s.seqcycle,
        'owned_by', (SELECT t.relname || '.' || a.attname
                       FROM pg_depend d
                       JOIN pg_class t ON t.oid = d.refobjid
                       JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = r.oid AND d.deptype = 'a'
                        AND d.refclassid = 'pg_class'::regclass LIMIT 1))
        ORDER BY r.relname), '[]')
       FROM rel r JOIN pg_sequence s ON s.seqrelid = r.oid
      WHERE r.relkind = 'S'
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = r.oid
                           AND d.deptype = 'i')),
  'functions', (SELECT coalesce(jsonb_agg(jsonb_build_object(
        'name', p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
        'definition', pg_get_functiondef(p.oid))
        ORDER BY p.proname, p.oid), '[]')
       FROM pg_proc p, ns
      WHERE p.pronamespace = ns.oid AND p.prokind IN ('f', 'p')
        AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_proc'::regclass AND ext.objid = p.oid)),
  -- Extensions in the application's schema (pg_trgm: staff search's trigram indexes).
  'extensions', (SELECT coalesce(jsonb_agg(jsonb_build_object(
        'name', x.extname,
        'version', x.extversion)
        ORDER BY x.extname), '[]')
       FROM pg_extension x, ns
      WHERE x.extnamespace = ns.oid),
  'types', (SELECT coalesce(jsonb_agg(jsonb_build_object(
        'name', ty.typname,
        'definition', CASE ty.typtype
            WHEN 'e' THEN 'ENUM (' || (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                                          FROM pg_enum e WHERE e.enumtypid = ty.oid) || ')'
            ELSE 'DOMAIN ' || format_type(ty.typbasetype, ty.typtypmod)
                 || CASE WHEN ty.typnotnull THEN ' NOT NULL' ELSE '' END
                 || coalesce(' DEFAULT ' || ty.typdefault, '')
                 || coalesce((SELECT ' ' || string_agg(pg_get_constraintdef(c.oid), ' ' ORDER BY c.conname)
                                FROM pg_constraint c WHERE c.contypid = ty.oid AND c.contype = 'c'), '') END)
        ORDER BY ty.typname), '[]')
       FROM pg_type ty, ns
      WHERE ty.typnamespace = ns.oid AND ty.typtype IN ('e', 'd')
        AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_type'::regclass AND ext.objid = ty.oid))
)
"""

KINDS = (
    "extensions",
    "types",
    "functions",
    "sequences",
    "relations",
    "columns",
    "constraints",
    "indexes",
    "triggers",
    "policies",
)


@dataclass(frozen=True)
class Schema:
    """Every object of the application's schema, by kind, each a dict (see ``_QUERY``)."""

    objects: dict[str, list[dict[str, Any]]]

    def count(self) -> int:
        return sum(len(rows) for rows in self.objects.values())


def schema_query(server_version: int) -> str:
    """The one query; PostgreSQL 18 added NOT ENFORCED constraints (``pg_constraint.conenforced``)."""
    return _QUERY.format(enforced="c.conenforced" if server_version >= 180000 else "true")


def read_schema(conn: "psycopg.Connection[Any]") -> Schema:
    """One round trip."""
    row = conn.execute(schema_query(conn.info.server_version).encode()).fetchone()
    assert row is not None
    return Schema(objects=row[0])
