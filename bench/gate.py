"""The schema gate's own time: one CloudFormation custom-resource request to the ``migrate`` handler.

Usage: python bench/gate.py [--database-url URL] [--repeat N]

Measured end to end through ``custom_resource.handle``: the connection, the
advisory lock, the plan, then verify (nothing pending) or the rehearsal in a
rolled-back transaction, both contracts, apply and verify (a file), and the PUT of the answer to a loopback HTTP server
standing in for ``ResponseURL``.  Two cases: a database with nothing pending
(every release that brings no migration), and one with a file to apply (a new
column), each on a fresh copy of a migrated database.  The file's case as it is
deployed: the package carries the expected schema of its migrations, built at ``make
package`` on the same major version (``scripts/expected_snapshot.py``, built here before
the timing); and, for scale, the same gate without it (another major version: the
migrations are replayed on the live server), and ``apply`` alone (it replays too).
"""

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import uuid
from contextlib import redirect_stderr, redirect_stdout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bench import _support
from chalicelib.migrate import custom_resource, run
from chalicelib.migrate.expected import build_snapshot
from chalicelib.migrate.files import load_migrations
from chalicelib.platform.settings import Settings
from chalicelib.schema_contract import contract_data

TARGET_MS = 1000
MIGRATIONS = _support.ROOT / "migrations"
PROBE = "999_add_bench_gate_probe.sql", "ALTER TABLE customer_registrations ADD COLUMN bench_gate_probe text;\n"


class _Context:
    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    server = _support.server(args.database_url)
    answers = _Answers()
    scratch = Path(tempfile.mkdtemp(prefix="bench-gate-"))
    try:
        with_file = scratch / "migrations"
        shutil.copytree(MIGRATIONS, with_file)
        (with_file / PROBE[0]).write_text(PROBE[1])
        snapshot = scratch / "expected-schema.json"
        with _support.database(server) as template:
            nothing = _nothing_pending(template, answers, args.repeat)
            with psycopg.connect(server, autocommit=True) as conn:  # what make package does, on the same major
                snapshot.write_text(json.dumps(build_snapshot(conn, load_migrations(with_file), Settings())))
            half = max(2, args.repeat // 2)
            os.environ["EXPECTED_SCHEMA_SNAPSHOT"] = str(snapshot)
            try:
                one_file = [_one_file(server, template, with_file, answers, "snapshot") for _ in range(half)]
            finally:
                del os.environ["EXPECTED_SCHEMA_SNAPSHOT"]
            replayed = [_one_file(server, template, with_file, answers, "replayed") for _ in range(half)]
            plain = [_plain_apply(server, template, with_file) for _ in range(half)]
    finally:
        answers.close()
        shutil.rmtree(scratch, ignore_errors=True)
    one = _support.summary(one_file)
    replay = _support.summary(replayed)
    plain_ms = _support.ms(statistics.median(plain))
    return {
        "server_version": _support.server_version(server),
        "nothing_pending": nothing,
        "one_file": one,
        "one_file_replayed": replay,
        "plain_apply_one_file_median_ms": plain_ms,
        "targets": [
            {
                "figure": "schema gate, nothing pending (custom-resource request to answer)",
                "value": f"{nothing['median_ms']:.1f} ms median (p99 {nothing['p99_ms']:.1f})",
                "target": f"< {TARGET_MS} ms",
                "met": nothing["median_ms"] < TARGET_MS,
            },
            {
                "figure": "schema gate, one file to apply (the package's expected schema)",
                "value": f"{one['median_ms']:.1f} ms median (p99 {one['p99_ms']:.1f}); without the package's "
                f"expected schema (replayed) {replay['median_ms']:.1f} ms; apply alone (replays) {plain_ms:.1f} ms",
                "target": f"< {TARGET_MS} ms",
                "met": one["median_ms"] < TARGET_MS,
            },
        ],
    }


def _request(answers: "_Answers", kind: str = "Update") -> dict[str, Any]:
    contract = json.dumps(contract_data())
    properties = {"ServiceToken": "arn:aws:lambda:ap-southeast-3:123456789012:function:migrate", "Contract": contract}
    return {
        "RequestType": kind,
        "ResponseURL": f"{answers.url}/{uuid.uuid4()}",
        "StackId": "arn:aws:cloudformation:ap-southeast-3:123456789012:stack/registration-backend-dev/bench",
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": "SchemaMigration",
        "PhysicalResourceId": custom_resource.PHYSICAL_ID,
        "ResourceType": "Custom::SchemaMigration",
        "ResourceProperties": properties | {"Release": uuid.uuid4().hex},
        "OldResourceProperties": properties | {"Release": "previous"},
    }


def _gate(url: str, migrations: Path, answers: "_Answers") -> tuple[float, dict[str, Any]]:
    printed = io.StringIO()
    with redirect_stdout(printed), redirect_stderr(printed):  # the report and progress lines
        seconds, answer = _support.timed(
            lambda: custom_resource.handle(
                _request(answers), _Context(), migrations_dir=migrations, database_url=url, settings=Settings()
            )
        )
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    return seconds, answer | {"printed": printed.getvalue()}


def _nothing_pending(url: str, answers: "_Answers", repeat: int) -> dict[str, Any]:
    _gate(url, MIGRATIONS, answers)  # warm: imports, the server's caches
    return _support.summary([_gate(url, MIGRATIONS, answers)[0] for _ in range(repeat)])


def _copy(server: str, template: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{conninfo_to_dict(template)["dbname"]}"'.encode())
    return make_conninfo(server, dbname=name)


def _one_file(server: str, template: str, migrations: Path, answers: "_Answers", expected: str) -> float:
    url = _copy(server, template)
    try:
        seconds, answer = _gate(url, migrations, answers)
        assert answer["Data"]["Applied"] == "1", answer
        said = "package's snapshot" if expected == "snapshot" else "expected schema replayed"
        assert said in answer["printed"], (said, answer["printed"][-2000:])
        return seconds
    finally:
        _support.drop_db(server, url)


def _plain_apply(server: str, template: str, migrations: Path) -> float:
    url = _copy(server, template)
    try:
        with redirect_stderr(io.StringIO()):
            seconds, report = _support.timed(lambda: run("apply", url, migrations_dir=migrations))
        assert report["applied"] == [PROBE[0]], report
        return seconds
    finally:
        _support.drop_db(server, url)


class _Answers:
    """A loopback HTTP server taking the PUTs, as S3 takes CloudFormation's answers."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":
    _support.write_json(main())
