"""The live schema against the one the migrations build: every difference, named by its effect.

Missing, different and extra are all drift.  Each message says what would go wrong
first, then which object (by name) and why, and each carries the SQL that repairs
it (``schema_fix``).  Objects the enum contract already judges by evaluating them
(``rules.compare_contract``: the status CHECKs, their columns' defaults, the
partial index predicates) are left to it, so one cause is reported once.
"""

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from chalicelib.migrate import schema_fix as fix
from chalicelib.migrate.predicate import UnsupportedPredicateError, parse_predicate, strip_constraint_definition
from chalicelib.migrate.report import Drift
from chalicelib.migrate.schema import Schema
from chalicelib.schema_contract import EnumColumn

# (expression a, expression b, SQL type) -> do they mean the same, as the database judges it.
Judge = Callable[[str, str, str], bool]

_CONSTRAINT_WORDS = {
    "p": "primary key",
    "u": "unique constraint",
    "f": "foreign key",
    "c": "CHECK constraint",
    "x": "exclusion constraint",
    "t": "constraint trigger",
}


def compare_schema(
    live: Schema, expected: Schema, contract: Sequence[EnumColumn], judge: Judge
) -> tuple[list[str], list[Drift]]:
    """(what was checked, drift), drift ordered so that running each fix_sql in turn works."""
    comparer = _Comparer(live.objects, expected.objects, contract, judge)
    drift = comparer.run()
    counts = {kind: len(rows) for kind, rows in expected.objects.items()}
    checked = [
        "schema against the migrations replayed into a scratch database: "
        + ", ".join(f"{n} {kind}" for kind, n in counts.items())
        + " (and grants, owners, row-level security)"
    ]
    return checked, drift


def _key(row: dict[str, Any]) -> tuple[str, ...]:
    return (row["table"], row["name"]) if "table" in row and "name" in row else (row.get("table") or row["name"],)


class _Comparer:
    def __init__(
        self,
        live: dict[str, list[dict[str, Any]]],
        expected: dict[str, list[dict[str, Any]]],
        contract: Sequence[EnumColumn],
        judge: Judge,
    ) -> None:
        self.live = {kind: {_key(r): r for r in rows} for kind, rows in live.items()}
        self.expected = {kind: {_key(r): r for r in rows} for kind, rows in expected.items()}
        self.judge = judge
        self.contract_constraints = {(c.table, c.constraint) for c in contract}
        self.contract_columns = {(c.table, c.column) for c in contract}
        self.contract_indexes = {(c.table, i.name) for c in contract for i in c.indexes}
        self.contract_by_table: dict[str, list[str]] = {}
        for column in contract:
            self.contract_by_table.setdefault(column.table, []).append(column.column)
        self.missing_tables = set(self.expected["relations"]) - set(self.live["relations"])
        self.extra_tables = set(self.live["relations"]) - set(self.expected["relations"])

    def run(self) -> list[Drift]:
        drift: list[Drift] = self._extensions()
        for kind in ("types", "functions", "sequences", "relations", "columns"):
            drift += getattr(self, f"_{kind}")()
        drift += self._constraints()
        drift += self._indexes()
        drift += self._triggers()
        drift += self._policies()
        drift += self._grants()
        # Run in turn, the fixes must drop what uses a function, type or sequence before it.
        last = ("function_extra", "sequence_extra", "type_extra", "extension_extra")
        return [d for d in drift if d.kind not in last] + [d for k in last for d in drift if d.kind == k]

    # The pairs of one kind, without those whose table is missing or extra as a whole.
    def _pairs(
        self, kind: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[tuple[dict[str, Any], dict[str, Any]]]]:
        live, expected = self.live[kind], self.expected[kind]
        missing = [r for k, r in expected.items() if k not in live and (r.get("table"),) not in self.missing_tables]
        extra = [r for k, r in live.items() if k not in expected and (r.get("table"),) not in self.extra_tables]
        both = [(live[k], r) for k, r in expected.items() if k in live]
        return missing, extra, both

    def _extensions(self) -> list[Drift]:
        """By name and version: a changed pg_trgm changes what the search indexes mean."""
        live, expected = self.live.get("extensions", {}), self.expected.get("extensions", {})
        drift = [
            Drift(
                "extension_missing",
                f"{_uses(x['name'])} stop working: extension {x['name']} is missing",
                f"CREATE EXTENSION IF NOT EXISTS {x['name']} VERSION '{x['version']}';",
            )
            for key, x in expected.items()
            if key not in live
        ]
        drift += [
            Drift(
                "extension_version_differs",
                f"{_uses(e['name'])} may behave otherwise: extension {e['name']} is version {live[key]['version']}, "
                f"the migrations leave {e['version']}",
                f"ALTER EXTENSION {e['name']} UPDATE TO '{e['version']}';",
            )
            for key, e in expected.items()
            if key in live and live[key]["version"] != e["version"]
        ]
        drift += [
            Drift(
                "extension_extra",
                f"the schema holds objects no migration makes: extension {x['name']} {x['version']} is extra",
                f"DROP EXTENSION IF EXISTS {x['name']};",
            )
            for key, x in live.items()
            if key not in expected
        ]
        return drift

    def _types(self) -> list[Drift]:
        missing, extra, both = self._pairs("types")
        drift = [
            Drift(
                "type_missing",
                f"columns and casts of type {t['name']} fail: type {t['name']} is missing",
                fix.type_create(t),
            )
            for t in missing
        ]
        drift += [
            Drift(
                "type_extra", f"columns may use a type no migration makes: type {t['name']} is extra", fix.type_drop(t)
            )
            for t in extra
        ]
        drift += [
            Drift(
                "type_differs",
                f"values of type {e['name']} are checked differently: {e['name']} is {lv['definition']}, "
                f"the migrations make it {e['definition']}",
                None,
            )
            for lv, e in both
            if lv["definition"] != e["definition"]
        ]
        return drift

    def _functions(self) -> list[Drift]:
        missing, extra, both = self._pairs("functions")
        drift = [
            Drift(
                "function_missing",
                f"triggers and statements calling {f['name']} fail: function {f['name']} is missing",
                f["definition"].strip() + ";",
            )
            for f in missing
        ]
        drift += [
            Drift(
                "function_extra",
                f"calls to {f['name']} run code no migration wrote: function {f['name']} is extra",
                f"DROP FUNCTION {f['name']};",
            )
            for f in extra
        ]
        drift += [
            Drift(
                "function_differs",
                f"what {e['name']} does is not what the migrations wrote: function {e['name']}'s body differs",
                e["definition"].strip() + ";",
            )
            for lv, e in both
            if lv["definition"] != e["definition"]
        ]
        return drift

    def _sequences(self) -> list[Drift]:
        missing, extra, both = self._pairs("sequences")
        drift = []
        for s in missing:
            owner_table = (s["owned_by"] or "").split(".")[0]
            drift.append(
                Drift(
                    "sequence_missing",
                    f"inserts that take a number from {s['name']} fail: sequence {s['name']} is missing",
                    fix.sequence_create(s, owned=(owner_table,) in self.live["relations"]),
                )
            )
        drift += [
            Drift(
                "sequence_extra",
                f"defaults may draw numbers no migration planned: sequence {s['name']} is extra",
                f"DROP SEQUENCE {s['name']};",
            )
            for s in extra
        ]
        for lv, e in both:
            options = ("type", "increment", "min", "max", "cache", "cycle", "start")
            changed = [o for o in options if lv[o] != e[o]]
            if changed:
                detail = ", ".join(f"{o} {lv[o]} (the migrations: {e[o]})" for o in changed)
                drift.append(
                    Drift(
                        "sequence_differs",
                        f"numbers drawn from {e['name']} run differently: sequence {e['name']} has {detail}",
                        fix.sequence_alter(e, changed),
                    )
                )
            if lv["owned_by"] != e["owned_by"]:
                drift.append(
                    Drift(
                        "sequence_owner_differs",
                        f"sequence {e['name']} is owned by {lv['owned_by'] or 'no column'}, not "
                        f"{e['owned_by'] or 'none'}: dropping the column leaves or takes the wrong sequence",
                        f"ALTER SEQUENCE {e['name']} OWNED BY {e['owned_by'] or 'NONE'};",
                    )
                )
        return drift

    def _relations(self) -> list[Drift]:
        drift = self._extra_tables()
        for (name,) in sorted(self.missing_tables):
            drift.append(
                Drift(
                    "table_missing",
                    f"every statement on {name} fails: table {name} does not exist (the migrations create it)",
                    fix.table_create(name, self.expected, self.live),
                )
            )
        for lv, e in (p for p in self._pairs("relations")[2]):
            drift += _relation_differences(lv, e)
        return drift

    def _extra_tables(self) -> list[Drift]:
        drift = []
        for (name,) in sorted(self.extra_tables):
            drift.append(
                Drift(
                    "table_extra",
                    f"the next migration that creates {name} will fail: "
                    f"{fix.relkind_word(self.live['relations'][(name,)]).lower()} {name} is in no migration",
                    "-- keep a copy of its rows first if they matter\n"
                    f"DROP {fix.relkind_word(self.live['relations'][(name,)])} {name};",
                )
            )
        return drift

    def _columns(self) -> list[Drift]:
        missing, extra, both = self._pairs("columns")
        drift = [
            Drift(
                "column_missing",
                f"statements that read or write {c['table']}.{c['name']} fail: column {c['name']} of {c['table']} "
                "is missing",
                fix.column_add(c),
            )
            for c in missing
        ]
        for c in extra:
            effect = (
                f"inserts into {c['table']} that leave {c['name']} out fail"
                if c["not_null"] and c["default"] is None and c["identity"] == "" and c["generated"] is None
                else f"{c['table']} carries a column the code does not know"
            )
            drift.append(
                Drift(
                    "column_extra",
                    f"{effect}: column {c['name']} of {c['table']} is not in the migrations",
                    f"ALTER TABLE {c['table']} DROP COLUMN {c['name']};",
                )
            )
        for lv, e in both:
            drift += self._column_differences(lv, e)
        return drift

    def _column_differences(self, lv: dict[str, Any], e: dict[str, Any]) -> list[Drift]:
        t, c = e["table"], e["name"]
        drift = []
        if lv["type"] != e["type"] or lv["collation"] != e["collation"]:
            drift.append(
                Drift(
                    "column_type_differs",
                    f"{t}.{c} takes {_typed(lv)}, not {_typed(e)} as the migrations make it (a value that does not fit "
                    f"fails, reads return another type): column {c}'s type was changed",
                    fix.column_type(e),
                )
            )
        if lv["not_null"] != e["not_null"]:
            if e["not_null"]:
                message = f"{t} accepts rows with no {c}: column {c} lost its NOT NULL"
                sql = f"ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL;"
            else:
                message = f"{t} rejects rows with no {c}: column {c} is NOT NULL, the migrations leave it nullable"
                sql = f"ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL;"
            drift.append(Drift("column_nullability_differs", message, sql))
        if lv["identity"] != e["identity"]:
            drift.append(
                Drift(
                    "column_identity_differs",
                    f"inserts into {t} number {c} differently: column {c} is "
                    f"{_identity(lv['identity'])}, the migrations make it {_identity(e['identity'])}",
                    fix.column_identity(e, lv),
                )
            )
        if lv["generated"] != e["generated"]:
            drift.append(
                Drift(
                    "column_generated_differs",
                    f"{t}.{c} is computed differently: column {c} is generated as {lv['generated'] or 'nothing'}, "
                    f"the migrations say {e['generated'] or 'not generated'}",
                    None,
                )
            )
        if (t, c) not in self.contract_columns and not self._same_default(lv, e):
            drift.append(
                Drift(
                    "column_default_differs",
                    f"a {t} row inserted without {c} gets {lv['default'] or 'NULL'}, not {e['default'] or 'NULL'}: "
                    f"column {c}'s default differs from the migrations'",
                    f"ALTER TABLE {t} ALTER COLUMN {c} "
                    + (f"SET DEFAULT {e['default']};" if e["default"] else "DROP DEFAULT;"),
                )
            )
        return drift

    def _same_default(self, lv: dict[str, Any], e: dict[str, Any]) -> bool:
        if lv["default"] == e["default"]:
            return True
        if lv["default"] is None or e["default"] is None:
            return False
        return self.judge(lv["default"], e["default"], e["type"])

    def _constraints(self) -> list[Drift]:
        missing, extra, both = self._pairs("constraints")
        drift = []
        for c in missing:
            if self._contract_owns(c):
                continue
            drift.append(
                Drift(
                    f"{_short(c)}_missing", f"{_accepts(c)}: {_word(c)} {c['name']} is missing", fix.constraint_add(c)
                )
            )
        for c in extra:
            if self._contract_owns(c):
                continue
            drift.append(
                Drift(
                    f"{_short(c)}_extra",
                    f"{c['table']} may reject rows the code writes: {_word(c)} {c['name']} "
                    f"({_definition(c)}) is not in the migrations",
                    f"ALTER TABLE {c['table']} DROP CONSTRAINT {c['name']};",
                )
            )
        for lv, e in both:
            if self._contract_owns(e):
                continue
            if not self._same_constraint(lv, e):
                drift.append(
                    Drift(
                        f"{_short(e)}_differs",
                        f"{e['table']} enforces {_definition(lv)} where the migrations say {_definition(e)}: "
                        f"{_word(e)} {e['name']} differs",
                        fix.constraint_replace(e),
                    )
                )
            elif lv["disabled_on"] != e["disabled_on"]:
                tables = sorted(set(lv["disabled_on"]) - set(e["disabled_on"]))
                drift.append(
                    Drift(
                        "constraint_not_enforced",
                        f"{_accepts(e)}: the triggers that enforce {_word(e)} {e['name']} are disabled "
                        f"(DISABLE TRIGGER ALL on {', '.join(tables)})",
                        "\n".join(f"ALTER TABLE {t} ENABLE TRIGGER ALL;" for t in tables),
                    )
                )
            elif not lv["enforced"] and e["enforced"]:
                drift.append(
                    Drift(
                        "constraint_not_enforced",
                        f"{_accepts(e)}: {_word(e)} {e['name']} is NOT ENFORCED",
                        fix.constraint_replace(e),
                    )
                )
            elif not lv["validated"] and e["validated"]:
                drift.append(
                    Drift(
                        "constraint_not_validated",
                        f"rows already in {e['table']} may break {e['name']}: {_word(e)} {e['name']} is NOT VALID "
                        "(it checks new rows only)",
                        f"ALTER TABLE {e['table']} VALIDATE CONSTRAINT {e['name']};",
                    )
                )
        return drift

    def _contract_owns(self, c: dict[str, Any]) -> bool:
        """The contract judges the CHECKs on its columns (by evaluation) and names them better."""
        if (c["table"], c["name"]) in self.contract_constraints:
            return True
        return c["type"] == "c" and len(c["columns"]) == 1 and (c["table"], c["columns"][0]) in self.contract_columns

    def _same_constraint(self, lv: dict[str, Any], e: dict[str, Any]) -> bool:
        a, b = _definition(lv), _definition(e)
        if lv["type"] != e["type"]:
            return False
        if a == b:
            return True
        if e["type"] == "c" and len(e["columns"]) == 1 and lv["columns"] == e["columns"]:
            return _same_predicate(strip_constraint_definition(a), strip_constraint_definition(b), e["columns"])
        return False

    def _indexes(self) -> list[Drift]:
        missing, extra, both = self._pairs("indexes")
        drift = []
        for i in missing:
            if (i["table"], i["name"]) in self.contract_indexes:
                continue  # the contract says index_missing, with the rule it enforced
            drift.append(
                Drift(
                    "index_missing",
                    f"{_index_effect(i)}: the {_index_word(i)} {i['name']} is missing",
                    fix.index_create(i),
                )
            )
        for i in extra:
            effect = (
                f"{i['table']} may reject rows the code writes"
                if " UNIQUE " in f" {i['definition']} "
                else f"every write to {i['table']} also maintains it"
            )
            drift.append(
                Drift(
                    "index_extra",
                    f"{effect}: {_index_word(i)} {i['name']} is not in the migrations",
                    f"DROP INDEX CONCURRENTLY {i['name']};",
                )
            )
        for lv, e in both:
            contract_owned = (e["table"], e["name"]) in self.contract_indexes
            if not self._same_index(lv, e, contract_owned):
                drift.append(
                    Drift(
                        "index_differs",
                        f"{_index_effect(e, differs=True)}: {_index_word(e)} {e['name']} is {lv['definition']}, "
                        f"the migrations build {e['definition']}",
                        fix.index_rebuild(e),
                    )
                )
            elif not lv["valid"] and not contract_owned:
                drift.append(
                    Drift(
                        "index_invalid",
                        f"{_index_effect(e)}: {_index_word(e)} {e['name']} is INVALID (a failed CONCURRENTLY build)",
                        fix.index_rebuild(e),
                    )
                )
        return drift

    def _same_index(self, lv: dict[str, Any], e: dict[str, Any], contract_owned: bool) -> bool:
        head_live = lv["definition"].split(" WHERE ")[0]
        head_expected = e["definition"].split(" WHERE ")[0]
        if head_live != head_expected:
            return False
        if contract_owned or lv["predicate"] == e["predicate"]:
            return True  # the contract evaluates its indexes' predicates against the enum
        if lv["predicate"] is None or e["predicate"] is None:
            return False
        return _same_predicate(lv["predicate"], e["predicate"], self.contract_by_table.get(e["table"], []))

    def _triggers(self) -> list[Drift]:
        missing, extra, both = self._pairs("triggers")
        drift = [
            Drift(
                "trigger_missing",
                f"{t['table']} no longer runs trigger {t['name']}: it is missing",
                t["definition"] + ";" + fix.trigger_enable(t),
            )
            for t in missing
        ]
        drift += [
            Drift(
                "trigger_extra",
                f"writes to {t['table']} also run code no migration wrote (it may reject or change what the "
                f"code writes): trigger {t['name']} is extra",
                f"DROP TRIGGER {t['name']} ON {t['table']};",
            )
            for t in extra
        ]
        for lv, e in both:
            if lv["definition"] != e["definition"]:
                drift.append(
                    Drift(
                        "trigger_differs",
                        f"{e['table']} runs trigger {e['name']} differently: it is {lv['definition']}, "
                        f"the migrations create {e['definition']}",
                        f"DROP TRIGGER {e['name']} ON {e['table']};\n{e['definition']};" + fix.trigger_enable(e),
                    )
                )
            elif lv["enabled"] != e["enabled"]:
                drift.append(
                    Drift(
                        "trigger_enabled_differs",
                        f"{e['table']} {'no longer runs' if lv['enabled'] == 'D' else 'runs'} trigger {e['name']}: "
                        f"it is {_enabled(lv['enabled'])}, the migrations leave it {_enabled(e['enabled'])}",
                        fix.trigger_enable(e, always=True).strip(),
                    )
                )
        return drift

    def _policies(self) -> list[Drift]:
        missing, extra, both = self._pairs("policies")
        drift = [
            Drift(
                "policy_missing",
                f"row-level security on {p['table']} lets through fewer rows than the code expects: "
                f"policy {p['name']} is missing",
                fix.policy_create(p),
            )
            for p in missing
        ]
        drift += [
            Drift(
                "policy_extra",
                f"row-level security on {p['table']} follows a rule no migration wrote: policy {p['name']} is extra",
                f"DROP POLICY {p['name']} ON {p['table']};",
            )
            for p in extra
        ]
        drift += [
            Drift(
                "policy_differs",
                f"row-level security on {e['table']} differs: policy {e['name']} is not as the migrations create it",
                f"DROP POLICY {e['name']} ON {e['table']};\n{fix.policy_create(e)}",
            )
            for lv, e in both
            if any(lv[k] != e[k] for k in ("command", "permissive", "roles", "using", "with_check"))
        ]
        return drift

    def _grants(self) -> list[Drift]:
        drift = []
        for lv, e in self._pairs("relations")[2]:
            name, live_acl, expected_acl = e["table"], set(lv["acl"]), set(e["acl"])
            for entry in sorted(expected_acl - live_acl):
                grantee, privilege = _grant(entry)
                drift.append(
                    Drift(
                        "grant_missing",
                        f"{grantee} can no longer {privilege} {name}: the grant of {privilege} on {name} to "
                        f"{grantee} is missing",
                        fix.grant(entry, name, lv, revoke=False),
                    )
                )
            for entry in sorted(live_acl - expected_acl):
                grantee, privilege = _grant(entry)
                drift.append(
                    Drift(
                        "grant_extra",
                        f"{grantee} may {privilege} {name}: the grant of {privilege} on {name} to {grantee} "
                        "is in no migration",
                        fix.grant(entry, name, lv, revoke=True),
                    )
                )
        return drift


def _uses(extension: str) -> str:
    if extension == "pg_trgm":
        return "staff searches by name (its trigram indexes and similarity operators)"
    return f"the types, functions and operators of {extension}"


def _relation_differences(lv: dict[str, Any], e: dict[str, Any]) -> list[Drift]:
    name = e["table"]
    drift = []
    if lv["relkind"] != e["relkind"] or lv["view"] != e["view"]:
        drift.append(
            Drift(
                "relation_differs",
                f"reads of {name} return something else: {name} is not the {fix.relkind_word(e).lower()} the "
                "migrations create",
                None,
            )
        )
    if lv["persistence"] != e["persistence"]:
        unlogged = lv["persistence"] == "u"
        drift.append(
            Drift(
                "table_persistence_differs",
                f"{name} {'loses its rows in a crash and is not replicated' if unlogged else 'is logged'}: "
                f"table {name} is {'UNLOGGED' if unlogged else 'LOGGED'}",
                f"ALTER TABLE {name} SET {'LOGGED' if unlogged else 'UNLOGGED'};",
            )
        )
    for flag, words in (("rls", "ROW LEVEL SECURITY"), ("force_rls", "ROW LEVEL SECURITY")):
        if lv[flag] != e[flag]:
            verb = (
                ("FORCE" if flag == "force_rls" else "ENABLE")
                if e[flag]
                else ("NO FORCE" if flag == "force_rls" else "DISABLE")
            )
            effect = (
                f"{name} shows every row to every role" if e[flag] else f"{name} hides rows from roles without a policy"
            )
            drift.append(
                Drift(
                    "row_level_security_differs",
                    f"{effect}: {'forced ' if flag == 'force_rls' else ''}row-level security is "
                    f"{'off' if e[flag] else 'on'} on {name}",
                    f"ALTER TABLE {name} {verb} {words};",
                )
            )
    if lv["owner"] != e["owner"]:
        drift.append(
            Drift(
                "owner_differs",
                f"the migrate user can no longer change {name}: table {name} is owned by {lv['owner']}",
                f"ALTER {fix.relkind_word(e)} {name} OWNER TO CURRENT_USER;",
            )
        )
    return drift


def _same_predicate(a: str, b: str, columns: Iterable[str]) -> bool:
    """Two one-column predicates that accept exactly the same values (a reordered IN list, say)."""
    for column in columns:
        try:
            left, right = parse_predicate(a, column), parse_predicate(b, column)
        except UnsupportedPredicateError:
            continue
        values: list[str | None] = [*sorted(left.literals | right.literals), None, "\x00stranger"]
        return all(left.evaluate(v) == right.evaluate(v) for v in values)
    return False


def _definition(c: dict[str, Any]) -> str:
    text: str = c["definition"]
    return text.removesuffix(" NOT VALID").removesuffix(" NOT ENFORCED")


def _word(c: dict[str, Any]) -> str:
    return _CONSTRAINT_WORDS.get(c["type"], "constraint")


def _short(c: dict[str, Any]) -> str:
    return {"p": "primary_key", "u": "unique", "f": "foreign_key", "c": "check", "x": "exclusion"}.get(
        c["type"], "constraint"
    )


def _accepts(c: dict[str, Any]) -> str:
    table, columns = c["table"], ", ".join(c["columns"])
    return {
        "p": f"{table} accepts duplicate or missing {columns}",
        "u": f"{table} accepts a second row with the same {columns}",
        "f": f"{table} accepts {columns} that point at nothing",
        "c": f"{table} accepts rows that break {_definition(c)}",
        "x": f"{table} accepts rows that conflict on {columns}",
    }.get(c["type"], f"{table} is not checked as the migrations say")


def _index_word(i: dict[str, Any]) -> str:
    return "unique index" if i["definition"].startswith("CREATE UNIQUE") else "index"


def _index_effect(i: dict[str, Any], differs: bool = False) -> str:
    # "... USING btree (registration_id)" -> "registration_id"
    keys = i["definition"].split(" USING ", 1)[-1].split(" WHERE ")[0].split(" ", 1)[-1]
    keys = keys[1:-1] if keys.startswith("(") and keys.endswith(")") and keys.count("(") == 1 else keys
    if i["definition"].startswith("CREATE UNIQUE"):
        return f"{i['table']} {'may accept' if differs else 'accepts'} a second row with the same {keys}"
    return f"queries on {i['table']} by {keys} {'may ' if differs else ''}scan the whole table"


def _typed(c: dict[str, Any]) -> str:
    typed = str(c["type"])
    return typed + (f' COLLATE "{c["collation"]}"' if c["collation"] else "")


def _identity(code: str) -> str:
    return {"a": "GENERATED ALWAYS AS IDENTITY", "d": "GENERATED BY DEFAULT AS IDENTITY"}.get(code, "not an identity")


def _enabled(code: str) -> str:
    return {"O": "enabled", "D": "DISABLED", "R": "ENABLED REPLICA", "A": "ENABLED ALWAYS"}.get(code, code)


def _grant(entry: str) -> tuple[str, str]:
    grantee, privilege = entry.rsplit(":", 1)
    grantee = {"OWNER": "the table's owner", "migrate user": "the migrate user"}.get(grantee, grantee)
    return grantee, privilege.rstrip("*")
