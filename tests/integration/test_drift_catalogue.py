"""The drift catalogue (tests/support/drift_catalogue.py): each scenario caught and named, its fix run, verify clean.

And no false alarm: a fresh apply, a second apply, and a database migrated file
by file across releases all verify clean.
"""

import re
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chalicelib.migrate import run
from tests.conftest import MIGRATIONS
from tests.support.drift_catalogue import MIGRATION_SCENARIOS, SCENARIOS, MigrationScenario, Scenario, apply_scenario


def _sql(url: str, statement: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement.encode())


def apply_fixes(url: str, report: dict[str, Any]) -> None:
    """Each drift's fix_sql in report order, one statement at a time (CONCURRENTLY refuses a transaction)."""
    for drift in report["drift"]:
        if drift["kind"] == "statement_does_not_prepare":
            continue  # fits again once the schema is repaired
        assert drift["fix_sql"], drift
        for statement in re.split(r";\s*\n", drift["fix_sql"]):
            statement = "\n".join(line for line in statement.splitlines() if not line.startswith("--")).strip()
            if statement:
                _sql(url, statement.rstrip(";"))


def test_the_catalogue_has_at_least_40_scenarios() -> None:
    names = [s.name for s in SCENARIOS] + [s.name for s in MIGRATION_SCENARIOS]
    assert len(SCENARIOS) >= 40
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_each_scenario_is_caught_named_and_fixed(scenario: Scenario, migrated_db: str, server_version: int) -> None:
    if server_version < scenario.min_server_version:
        pytest.skip(f"needs PostgreSQL {scenario.min_server_version // 10000}")
    apply_scenario(migrated_db, scenario)

    report = run("verify", migrated_db, migrations_dir=MIGRATIONS)

    assert not report["ok"]
    assert sorted({d["kind"] for d in report["drift"]}) == sorted({kind for kind, _ in scenario.expect}), report[
        "drift"
    ]
    for kind, name in scenario.expect:
        messages = [d["message"] for d in report["drift"] if d["kind"] == kind]
        assert any(re.search(rf"\b{re.escape(name)}\b", m) for m in messages), (name, messages)
        # The effect comes first, then the cause: "<what goes wrong>: <which object, why>".
        assert all(": " in m for m in messages), messages

    apply_fixes(migrated_db, report)
    after = run("verify", migrated_db, migrations_dir=MIGRATIONS)
    assert after["ok"], after["drift"]


def test_a_fresh_apply_and_a_second_apply_verify_clean(empty_db: str) -> None:
    first = run("apply", empty_db, migrations_dir=MIGRATIONS)
    assert first["ok"], first["drift"]
    second = run("apply", empty_db, migrations_dir=MIGRATIONS)
    assert second["ok"], second["drift"]
    assert second["applied"] == []
    assert run("verify", empty_db, migrations_dir=MIGRATIONS)["ok"]


def test_a_database_migrated_file_by_file_across_releases_verifies_clean(empty_db: str, tmp_path: Path) -> None:
    """Each release shipped one more file: apply (which verifies) after each, as the deploys did.

    An earlier release's code had no enum contract, nor statements, for tables it did not have yet.
    """
    release = tmp_path / "migrations"
    release.mkdir()
    for path in sorted(MIGRATIONS.glob("*.sql")):
        (release / path.name).write_bytes(path.read_bytes())
        report = run("apply", empty_db, migrations_dir=release, contract=())
        assert report["applied"] == [path.name]
        # Only today's statements may not fit yet (they use tables of later files); the schema does.
        assert {d["kind"] for d in report["drift"]} <= {"statement_does_not_prepare"}, (path.name, report["drift"])
    assert run("verify", empty_db, migrations_dir=MIGRATIONS)["ok"]


@pytest.mark.parametrize("scenario", MIGRATION_SCENARIOS, ids=[s.name for s in MIGRATION_SCENARIOS])
def test_a_migration_the_code_disagrees_with_is_caught_and_a_migration_repairs_it(
    scenario: MigrationScenario, migrated_db: str, migrations_copy: Path
) -> None:
    (migrations_copy / "100_change.sql").write_text(scenario.sql + "\n")

    report = run("apply", migrated_db, migrations_dir=migrations_copy)

    assert report["applied"] == ["100_change.sql"]
    assert sorted({d["kind"] for d in report["drift"]}) == sorted({k for k, _ in scenario.expect}), report["drift"]
    for kind, name in scenario.expect:
        assert any(name in d["message"] for d in report["drift"] if d["kind"] == kind), (name, report["drift"])

    (migrations_copy / "101_undo.sql").write_text(scenario.undo + "\n")
    repaired = run("apply", migrated_db, migrations_dir=migrations_copy)
    assert repaired["ok"], repaired["drift"]
