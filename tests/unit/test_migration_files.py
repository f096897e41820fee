"""Finding the migration files, and refusing a folder the runner cannot trust."""

from pathlib import Path

import pytest

from chalicelib.migrate.files import MigrationFilesError, load_migrations, statements

ROOT = Path(__file__).resolve().parents[2]


def test_the_real_migrations_load_in_order() -> None:
    migrations = load_migrations(ROOT / "migrations")
    assert [m.number for m in migrations] == sorted(m.number for m in migrations)
    assert migrations[0].name == "001_create_packages.sql"
    assert all(len(m.checksum) == 64 for m in migrations)


def test_no_transaction_directive(tmp_path: Path) -> None:
    (tmp_path / "001_add_index.sql").write_text("-- migrate: no-transaction\nCREATE INDEX CONCURRENTLY x ON t (a);\n")
    (tmp_path / "002_add_table.sql").write_text("CREATE TABLE t (a int);\n")
    first, second = load_migrations(tmp_path)
    assert (first.in_transaction, second.in_transaction) == (False, True)


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ({"1_short.sql": "SELECT 1;"}, "named NNN_verb_noun.sql"),
        ({"001_Capital.sql": "SELECT 1;"}, "named NNN_verb_noun.sql"),
        ({"001_a.sql": "SELECT 1;", "001_b.sql": "SELECT 1;"}, "share number 1"),
        ({"001_a.sql": "-- migrate: no-transation\nSELECT 1;"}, "unknown directive"),
    ],
)
def test_refuses_a_folder_it_cannot_trust(tmp_path: Path, files: dict[str, str], error: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(MigrationFilesError, match=error):
        load_migrations(tmp_path)


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MigrationFilesError, match="no migrations folder"):
        load_migrations(tmp_path / "nowhere")


def test_a_no_transaction_file_is_sent_one_statement_at_a_time() -> None:
    sql = (
        "-- migrate: no-transaction\n-- why\nCREATE EXTENSION IF NOT EXISTS pg_trgm;\n\n"
        "-- a comment of the next one\nCREATE INDEX CONCURRENTLY IF NOT EXISTS a\n    ON t (a);\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS b ON t (b);\n-- trailing comment\n"
    )
    assert statements(sql) == [
        "-- migrate: no-transaction\n-- why\nCREATE EXTENSION IF NOT EXISTS pg_trgm;",
        "-- a comment of the next one\nCREATE INDEX CONCURRENTLY IF NOT EXISTS a\n    ON t (a);",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS b ON t (b);",
    ]


def test_the_soak_finds_the_migrations() -> None:
    # `make soak` (python -m tests.soak) applies them itself; its folder moved once and lost them.
    from tests.soak import runner

    assert (runner.ROOT / "migrations").is_dir()
    assert runner.ROOT == ROOT
