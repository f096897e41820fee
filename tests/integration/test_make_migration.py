"""``make migration NAME=...`` (chalicelib/migrate/generate.py): a status added to the enum, the files written for it.

No SQL is typed here: the enum grows in a scratch copy of the contract, the generator
writes the files into a scratch copy of migrations/, apply runs them, verify is clean.
"""

import dataclasses
import subprocess
from enum import StrEnum
from pathlib import Path

import psycopg
import pytest

from chalicelib.migrate import generate, run
from chalicelib.schema_contract import CONTRACT, EnumColumn
from chalicelib.statuses import RegistrationStatus

SQUAWK = Path(".venv/bin/squawk")

# The enum as the code would have it after one more status; "on_hold" is not active (the partial
# unique indexes must leave it out: their predicate, written as NOT IN the terminal statuses, would
# take it in), so the indexes need rebuilding too.
OnHoldStatus = StrEnum(  # type: ignore[misc]
    "OnHoldStatus", {**{s.name: s.value for s in RegistrationStatus}, "ON_HOLD": "on_hold"}
)


def _with_on_hold() -> tuple[EnumColumn, ...]:
    grown = []
    for column in CONTRACT:
        if column.enum is RegistrationStatus:
            column = dataclasses.replace(column, enum=OnHoldStatus)
        grown.append(column)
    return tuple(grown)


def test_nothing_is_written_when_the_code_and_the_migrations_agree(server_url: str, migrations_copy: Path) -> None:
    before = sorted(p.name for p in migrations_copy.iterdir())
    with psycopg.connect(server_url, autocommit=True) as conn:
        assert generate.write(migrations_copy, "allow_nothing", CONTRACT, conn) == []
    assert sorted(p.name for p in migrations_copy.iterdir()) == before


def test_a_new_status_gets_lock_safe_files_that_apply_and_verify_clean(
    server_url: str, migrations_copy: Path, empty_db: str
) -> None:
    contract = _with_on_hold()
    with psycopg.connect(server_url, autocommit=True) as conn:
        written = generate.write(migrations_copy, "allow_status_on_hold", contract, conn)

    names = [p.name for p in written]
    assert [n.split("_", 1)[1] for n in names] == [
        "allow_status_on_hold.sql",
        "validate_allow_status_on_hold.sql",
        "allow_status_on_hold_indexes.sql",
    ]
    swap, validate, indexes = (p.read_text() for p in written)
    assert "NOT VALID" in swap
    assert "VALIDATE" not in swap
    assert "VALIDATE CONSTRAINT valid_status" in validate
    assert "-- migrate: no-transaction" in indexes
    assert "customer_registrations_active_phone_key" in indexes
    assert "'on_hold'" not in indexes
    if SQUAWK.exists():
        result = subprocess.run([str(SQUAWK), *map(str, written)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr

    report = run("apply", empty_db, migrations_dir=migrations_copy, contract=contract)

    assert report["ok"], report["drift"]
    assert report["applied"][-3:] == names
    with psycopg.connect(server_url, autocommit=True) as conn:
        assert generate.write(migrations_copy, "allow_status_on_hold_again", contract, conn) == []


def test_the_cli_says_when_there_is_nothing_to_write(
    server_url: str, migrations_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert generate.main(["allow_nothing", "--migrations-dir", str(migrations_copy), "--database-url", server_url]) == 0
    assert "nothing written" in capsys.readouterr().out
