"""The schema contract as data: what the migrate gate's custom resource carries between releases."""

import json
from typing import Any

import psycopg
import pytest

from chalicelib.migrate.catalog import read_catalog
from chalicelib.migrate.rules import writable_drift
from chalicelib.schema_contract import CONTRACT, WRITES, contract_data, contract_from_data


def test_the_contract_survives_json() -> None:
    data = contract_data()
    enums, writes = contract_from_data(json.loads(json.dumps(data)))
    assert [(c.table, c.column, c.values, c.constraint, c.default, c.indexes) for c in enums] == [
        (c.table, c.column, c.values, c.constraint, c.default, c.indexes) for c in CONTRACT
    ]
    assert writes == {table: tuple(sorted(columns)) for table, columns in WRITES.items()}
    # One enum class per enum: columns sharing RegistrationStatus share it back.
    assert enums[1].enum is enums[2].enum


def test_every_table_and_column_the_contract_lists_exists_after_the_migrations(migrated_db: str) -> None:
    tables = sorted({c.table for c in CONTRACT} | set(WRITES))
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        catalog = read_catalog(conn, tables)
    assert {c["table"] for c in catalog.columns} == set(tables)
    assert writable_drift(catalog, CONTRACT, WRITES) == []


@pytest.mark.parametrize(
    "bad", [{}, {"format": 1}, {"format": 1, "enums": [{"table": "t"}], "writes": {}}, []], ids=str
)
def test_a_contract_that_is_not_one_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="schema contract"):
        contract_from_data(bad)
