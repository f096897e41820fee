"""The SQL that puts one schema object back as the migrations build it.

Built from the expected object as the scratch database's catalog rendered it, so
the fix says exactly what the migrations made.  Statements that PostgreSQL refuses
in a transaction (``CONCURRENTLY``) stand alone, one per line ending in ``;``.
"""

from typing import Any

Objects = dict[str, dict[tuple[str, ...], dict[str, Any]]]

_RELKIND_WORDS = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "f": "FOREIGN TABLE"}
_POLICY_COMMANDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}


def relkind_word(relation: dict[str, Any]) -> str:
    return _RELKIND_WORDS.get(relation["relkind"], "TABLE")


def column_sql(c: dict[str, Any]) -> str:
    parts = [c["name"], c["type"]]
    if c["collation"]:
        parts.append(f'COLLATE "{c["collation"]}"')
    if c["generated"]:
        parts.append(f"GENERATED ALWAYS AS ({c['generated']}) STORED")
    elif c["identity"]:
        parts.append(f"GENERATED {'ALWAYS' if c['identity'] == 'a' else 'BY DEFAULT'} AS IDENTITY")
    elif c["default"]:
        parts.append(f"DEFAULT {c['default']}")
    if c["not_null"] and not c["identity"]:
        parts.append("NOT NULL")
    return " ".join(parts)


def column_add(c: dict[str, Any]) -> str:
    return f"ALTER TABLE {c['table']} ADD COLUMN {column_sql(c)};"


def column_type(c: dict[str, Any]) -> str:
    collate = f' COLLATE "{c["collation"]}"' if c["collation"] else ""
    return (
        f"ALTER TABLE {c['table']} ALTER COLUMN {c['name']} TYPE {c['type']}{collate} USING {c['name']}::{c['type']};"
    )


def column_identity(expected: dict[str, Any], live: dict[str, Any]) -> str:
    t, c = expected["table"], expected["name"]
    if not expected["identity"]:
        return f"ALTER TABLE {t} ALTER COLUMN {c} DROP IDENTITY;"
    how = "ALWAYS" if expected["identity"] == "a" else "BY DEFAULT"
    if live["identity"]:
        return f"ALTER TABLE {t} ALTER COLUMN {c} SET GENERATED {how};"
    # Start above the rows already there.
    return (
        f"ALTER TABLE {t} ALTER COLUMN {c} DROP DEFAULT, ALTER COLUMN {c} ADD GENERATED {how} AS IDENTITY;\n"
        f"SELECT setval(pg_get_serial_sequence('{t}', '{c}'), coalesce(max({c}), 0) + 1, false) FROM {t};"
    )


def constraint_add(c: dict[str, Any]) -> str:
    definition = c["definition"].removesuffix(" NOT VALID")
    if c["type"] in ("c", "f"):
        # Added NOT VALID (no scan under the table's strongest lock), then validated apart.
        return (
            f"ALTER TABLE {c['table']} ADD CONSTRAINT {c['name']} {definition} NOT VALID;\n"
            f"ALTER TABLE {c['table']} VALIDATE CONSTRAINT {c['name']};"
        )
    return f"ALTER TABLE {c['table']} ADD CONSTRAINT {c['name']} {definition};"


def constraint_replace(c: dict[str, Any]) -> str:
    definition = c["definition"].removesuffix(" NOT VALID")
    head = f"ALTER TABLE {c['table']} DROP CONSTRAINT {c['name']}, ADD CONSTRAINT {c['name']} {definition}"
    if c["type"] in ("c", "f"):
        return f"{head} NOT VALID;\nALTER TABLE {c['table']} VALIDATE CONSTRAINT {c['name']};"
    return head + ";"


def index_create(i: dict[str, Any]) -> str:
    definition: str = i["definition"]
    return definition.replace(" INDEX ", " INDEX CONCURRENTLY ", 1) + ";"


def index_rebuild(i: dict[str, Any]) -> str:
    """Build the right index beside the wrong one, then swap: the table is never without it."""
    name, new = i["name"], f"{i['name']}_rebuilt"
    create = i["definition"].replace(f" INDEX {name} ON ", f" INDEX CONCURRENTLY {new} ON ", 1)
    return (
        f"DROP INDEX CONCURRENTLY IF EXISTS {new};\n{create};\n"
        f"DROP INDEX CONCURRENTLY {name};\nALTER INDEX {new} RENAME TO {name};"
    )


def trigger_enable(t: dict[str, Any], always: bool = False) -> str:
    words = {"O": "ENABLE", "D": "DISABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}
    if t["enabled"] == "O" and not always:
        return ""
    return f"\nALTER TABLE {t['table']} {words[t['enabled']]} TRIGGER {t['name']};"


def policy_create(p: dict[str, Any]) -> str:
    roles = ", ".join(p["roles"]) or "PUBLIC"
    sql = (
        f"CREATE POLICY {p['name']} ON {p['table']} AS {'PERMISSIVE' if p['permissive'] else 'RESTRICTIVE'} "
        f"FOR {_POLICY_COMMANDS[p['command']]} TO {roles}"
    )
    if p["using"]:
        sql += f" USING ({p['using']})"
    if p["with_check"]:
        sql += f" WITH CHECK ({p['with_check']})"
    return sql + ";"


def sequence_options(s: dict[str, Any]) -> str:
    return (
        f"AS {s['type']} INCREMENT BY {s['increment']} MINVALUE {s['min']} MAXVALUE {s['max']} "
        f"CACHE {s['cache']} {'CYCLE' if s['cycle'] else 'NO CYCLE'}"
    )


def sequence_create(s: dict[str, Any], *, owned: bool) -> str:
    sql = f"CREATE SEQUENCE {s['name']} {sequence_options(s)} START WITH {s['start']};"
    if owned and s["owned_by"]:
        sql += f"\nALTER SEQUENCE {s['name']} OWNED BY {s['owned_by']};"
    return sql


def sequence_alter(s: dict[str, Any], changed: list[str]) -> str:
    sql = f"ALTER SEQUENCE {s['name']} {sequence_options(s)}"
    if "start" in changed:
        sql += f" START WITH {s['start']}"
    return sql + ";"


def type_create(t: dict[str, Any]) -> str:
    definition: str = t["definition"]
    if definition.startswith("ENUM "):
        return f"CREATE TYPE {t['name']} AS {definition};"
    return f"CREATE DOMAIN {t['name']} AS {definition.removeprefix('DOMAIN ')};"


def type_drop(t: dict[str, Any]) -> str:
    return f"DROP {'TYPE' if t['definition'].startswith('ENUM ') else 'DOMAIN'} {t['name']};"


def grant(entry: str, table: str, relation: dict[str, Any], *, revoke: bool) -> str:
    grantee, privilege = entry.rsplit(":", 1)
    grantable = privilege.endswith("*")
    privilege = privilege.rstrip("*")
    role = {"OWNER": _owner(relation), "migrate user": "CURRENT_USER"}.get(grantee, grantee)
    word = relkind_word(relation) if relation["relkind"] != "S" else "SEQUENCE"
    word = "TABLE" if word != "SEQUENCE" else word
    if revoke:
        return f"REVOKE {privilege} ON {word} {table} FROM {role};"
    return f"GRANT {privilege} ON {word} {table} TO {role}{' WITH GRANT OPTION' if grantable else ''};"


def _owner(relation: dict[str, Any]) -> str:
    owner: str = relation["owner"]
    return "CURRENT_USER" if owner == "migrate user" else owner


def table_create(name: str, expected: Objects, live: Objects) -> str:
    """The whole table as the migrations leave it: columns, constraints, indexes, triggers, policies, grants."""
    relation = expected["relations"][(name,)]
    if relation["relkind"] in ("v", "m"):
        return f"CREATE {relkind_word(relation)} {name} AS {relation['view']}"
    columns = [c for (t, _), c in expected["columns"].items() if t == name]
    unlogged = "UNLOGGED " if relation["persistence"] == "u" else ""
    lines = [f"CREATE {unlogged}TABLE {name} (\n    " + ",\n    ".join(column_sql(c) for c in columns) + "\n);"]
    lines += [
        f"ALTER TABLE {name} ADD CONSTRAINT {c['name']} {c['definition']};"
        for (t, _), c in expected["constraints"].items()
        if t == name
    ]
    lines += [index_create(i).replace(" CONCURRENTLY", "") for (t, _), i in expected["indexes"].items() if t == name]
    lines += [g["definition"] + ";" + trigger_enable(g) for (t, _), g in expected["triggers"].items() if t == name]
    if relation["rls"]:
        lines.append(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY;")
    if relation["force_rls"]:
        lines.append(f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY;")
    lines += [policy_create(p) for (t, _), p in expected["policies"].items() if t == name]
    lines += [
        f"ALTER SEQUENCE {s['name']} OWNED BY {s['owned_by']};"
        for s in expected["sequences"].values()
        if (s["owned_by"] or "").split(".")[0] == name
    ]
    # The owner's own privileges come with the table; the others' are granted again.
    lines += [grant(entry, name, relation, revoke=False) for entry in relation["acl"] if not entry.startswith("OWNER:")]
    return "\n".join(lines)
