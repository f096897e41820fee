"""The migrate Lambda as CloudFormation's custom resource: the schema gate, driven through its handler.

A real HTTP server on loopback stands in for the presigned ``ResponseURL``; each
test reads the PUTs it received.  Releases are temporary migration folders with
contracts built as data, as ``make package`` puts them in the resource's properties.
"""

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from chalice.test import Client

from chalicelib.migrate import custom_resource, run
from chalicelib.migrate.catalog import HISTORY_TABLE
from chalicelib.platform.settings import Settings
from chalicelib.schema_contract import CONTRACT, WRITES, contract_data
from tests.conftest import MIGRATIONS
from tests.support.runtime import new_container

STACK_ID = "arn:aws:cloudformation:ap-southeast-3:123456789012:stack/registration-backend-dev/0f1e2d3c"


class ResponseServer:
    """Records every PUT, as S3 would store CloudFormation's answer."""

    def __init__(self) -> None:
        self.puts: list[dict[str, Any]] = []
        received = self.puts

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def answers(self) -> list[dict[str, Any]]:
        return [json.loads(put["body"]) for put in self.puts]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def s3() -> Iterator[ResponseServer]:
    server = ResponseServer()
    yield server
    server.close()


class Context:
    def __init__(self, remaining_ms: int = 60_000) -> None:
        self.deadline = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)


def event(
    s3: ResponseServer,
    kind: str,
    contract: dict[str, Any] | None = None,
    old: dict[str, Any] | None = None,
    physical_id: str | None = None,
) -> dict[str, Any]:
    def properties(data: dict[str, Any] | None) -> dict[str, Any]:
        found = {"ServiceToken": "arn:aws:lambda:ap-southeast-3:123456789012:function:migrate", "Release": "abc"}
        return found | ({"Contract": json.dumps(data)} if data is not None else {})

    request = {
        "RequestType": kind,
        "ResponseURL": f"{s3.url}/cfn-response/{uuid.uuid4()}?X-Amz-Signature=x",
        "StackId": STACK_ID,
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": "SchemaMigration",
        "ResourceType": "Custom::SchemaMigration",
        "ResourceProperties": properties(contract),
    }
    if kind != "Create":
        request["PhysicalResourceId"] = physical_id or custom_resource.PHYSICAL_ID
    if old is not None or kind == "Update":
        request["OldResourceProperties"] = properties(old)
    return request


def send(s3: ResponseServer, request: dict[str, Any], migrations: Path, url: str, **kwargs: Any) -> dict[str, Any]:
    before = len(s3.puts)
    returned = custom_resource.handle(request, Context(), migrations_dir=migrations, database_url=url, **kwargs)
    assert len(s3.puts) == before + 1, "exactly one answer"
    answer = s3.answers()[-1]
    assert answer == returned
    for key in ("StackId", "RequestId", "LogicalResourceId"):
        assert answer[key] == request[key]
    assert len(s3.puts[-1]["body"]) <= custom_resource.MAX_BODY_BYTES
    return answer


# A release history on a small schema of its own.


def thing_contract(values: list[str], writes: list[str]) -> dict[str, Any]:
    return {
        "format": 1,
        "enums": [
            {
                "table": "things",
                "column": "status",
                "enum": "ThingStatus",
                "values": values,
                "constraint": "valid_thing_status",
                "default": "new",
                "indexes": [],
            }
        ],
        "writes": {"things": writes},
    }


V1 = {
    "001_create_things.sql": (
        "CREATE TABLE things (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        "status text NOT NULL DEFAULT 'new' CONSTRAINT valid_thing_status CHECK (status IN ('new', 'done')), "
        "note text);\n"
    )
}
V2 = V1 | {
    "002_allow_held.sql": (
        "ALTER TABLE things DROP CONSTRAINT valid_thing_status, "
        "ADD CONSTRAINT valid_thing_status CHECK (status IN ('new', 'done', 'held')) NOT VALID;\n"
    ),
    "003_validate_thing_status.sql": "ALTER TABLE things VALIDATE CONSTRAINT valid_thing_status;\n",
}
CONTRACT_V1 = thing_contract(["new", "done"], ["status", "note"])
CONTRACT_V2 = thing_contract(["new", "done", "held"], ["status", "note"])

# Releases whose migration narrows what v2's code writes.
NARROWING = {
    "status_removed": (
        "ALTER TABLE things DROP CONSTRAINT valid_thing_status, "
        "ADD CONSTRAINT valid_thing_status CHECK (status IN ('new', 'held'));\n",
        thing_contract(["new", "held"], ["status", "note"]),
        "things rejects status 'done'",
    ),
    "column_dropped": (
        "ALTER TABLE things DROP COLUMN note;\n",
        thing_contract(["new", "done", "held"], ["status"]),
        "writes to things.note fail",
    ),
    "required_column_added": (
        "ALTER TABLE things ADD COLUMN owner text NOT NULL;\n",
        thing_contract(["new", "done", "held"], ["status", "note", "owner"]),
        "inserts into things fail: things.owner is NOT NULL without a default",
    ),
    "column_renamed": (
        "ALTER TABLE things RENAME COLUMN note TO remark;\n",
        thing_contract(["new", "done", "held"], ["status", "remark"]),
        "writes to things.note fail",
    ),
}


def release(tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for file, sql in files.items():
        (folder / file).write_text(sql)
    return folder


def history(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute(f"SELECT name FROM {HISTORY_TABLE} ORDER BY name")]


def thing_constraint(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'valid_thing_status'")
        found = row.fetchone()
    assert found is not None
    return str(found[0])


@pytest.mark.parametrize("narrowing", sorted(NARROWING))
def test_a_release_sequence_through_the_handler(
    narrowing: str, s3: ResponseServer, empty_db: str, tmp_path: Path
) -> None:
    v1, v2 = release(tmp_path, "v1", V1), release(tmp_path, "v2", V2)
    sql, contract_v3, effect = NARROWING[narrowing]
    v3 = release(tmp_path, "v3", V2 | {"004_narrow_things.sql": sql})

    created = send(s3, event(s3, "Create", CONTRACT_V1), v1, empty_db)
    assert (created["Status"], created["PhysicalResourceId"]) == ("SUCCESS", custom_resource.PHYSICAL_ID)
    assert history(empty_db) == ["001_create_things.sql"]

    # v2 adds a status, and the two-step migration that allows it.
    updated = send(s3, event(s3, "Update", CONTRACT_V2, old=CONTRACT_V1), v2, empty_db)
    assert updated["Status"] == "SUCCESS", updated["Reason"]
    assert updated["PhysicalResourceId"] == created["PhysicalResourceId"]
    assert "002_allow_held.sql" in updated["Reason"]
    assert run("verify", empty_db, migrations_dir=v2, contract=_enums(CONTRACT_V2))["ok"]

    # v3 narrows what v2, still serving, writes: refused before anything is applied.
    constraint_before = thing_constraint(empty_db)
    refused = send(s3, event(s3, "Update", contract_v3, old=CONTRACT_V2), v3, empty_db)
    assert refused["Status"] == "FAILED"
    assert refused["Reason"].startswith("refused, nothing applied: the release still running would fail: " + effect)
    assert "004_narrow_things.sql" in refused["Reason"]
    assert "split the release" in refused["Reason"]
    assert history(empty_db) == sorted(V2)
    assert thing_constraint(empty_db) == constraint_before
    with psycopg.connect(empty_db) as conn:
        conn.execute("INSERT INTO things (status, note) VALUES ('done', 'v2 still writes this')")

    # CloudFormation rolls back: Update with v2's properties again, v3's as the old ones.
    rollback = send(s3, event(s3, "Update", CONTRACT_V2, old=contract_v3), v2, empty_db)
    assert rollback["Status"] == "SUCCESS", rollback["Reason"]
    assert rollback["Reason"].startswith("nothing pending")
    assert history(empty_db) == sorted(V2)

    deleted = send(s3, event(s3, "Delete", CONTRACT_V2), v2, empty_db)
    assert deleted["Status"] == "SUCCESS"
    assert deleted["PhysicalResourceId"] == custom_resource.PHYSICAL_ID
    assert history(empty_db) == sorted(V2)
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("SELECT count(*) FROM things").fetchone() == (1,)


def _enums(contract: dict[str, Any]) -> Any:
    from chalicelib.schema_contract import contract_from_data

    return contract_from_data(contract)[0]


def test_a_rollback_onto_a_database_ahead_of_the_code_applies_nothing(
    s3: ResponseServer, empty_db: str, tmp_path: Path
) -> None:
    """v3 migrated (expand only), then something else in the stack failed: v2's Update finds files it lacks."""
    v2 = release(tmp_path, "v2", V2)
    contract_v3 = thing_contract(["new", "done", "held"], ["status", "note", "priority"])
    v3 = release(tmp_path, "v3", V2 | {"004_add_priority.sql": "ALTER TABLE things ADD COLUMN priority int;\n"})
    assert send(s3, event(s3, "Create", CONTRACT_V2), v2, empty_db)["Status"] == "SUCCESS"
    forward = send(s3, event(s3, "Update", contract_v3, old=CONTRACT_V2), v3, empty_db)
    assert forward["Status"] == "SUCCESS", forward["Reason"]

    rollback = send(s3, event(s3, "Update", CONTRACT_V2, old=contract_v3), v2, empty_db)

    assert rollback["Status"] == "SUCCESS", rollback["Reason"]
    assert "ahead of this code" in rollback["Reason"]
    assert rollback["Data"]["Applied"] == "0"
    assert history(empty_db) == [*sorted(V2), "004_add_priority.sql"]


def test_a_database_ahead_that_rejects_what_the_code_writes_fails(
    s3: ResponseServer, empty_db: str, tmp_path: Path
) -> None:
    v2 = release(tmp_path, "v2", V2)
    assert send(s3, event(s3, "Create", CONTRACT_V2), v2, empty_db)["Status"] == "SUCCESS"
    # Applied by hand by some other code: narrows what v2 writes.
    with psycopg.connect(empty_db) as conn:
        conn.execute("ALTER TABLE things DROP COLUMN note")
        conn.execute(f"INSERT INTO {HISTORY_TABLE} (name, checksum, duration_ms) VALUES ('004_x.sql', 'x', 1)")

    answer = send(s3, event(s3, "Update", CONTRACT_V2, old=CONTRACT_V2), v2, empty_db)

    assert answer["Status"] == "FAILED"
    assert "writes to things.note fail" in answer["Reason"]


def test_the_incoming_contract_is_checked_on_the_rehearsal_before_anything_is_applied(
    s3: ResponseServer, empty_db: str, tmp_path: Path
) -> None:
    """The incident's shape: the code gains a status, the release's migration forgets it."""
    v1 = release(tmp_path, "v1", V1)
    assert send(s3, event(s3, "Create", CONTRACT_V1), v1, empty_db)["Status"] == "SUCCESS"
    forgetful = release(tmp_path, "v2", V1 | {"002_add_index.sql": "CREATE INDEX things_note_idx ON things (note);\n"})

    answer = send(s3, event(s3, "Update", CONTRACT_V2, old=CONTRACT_V1), forgetful, empty_db)

    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("refused, nothing applied: things rejects status 'held'")
    assert history(empty_db) == ["001_create_things.sql"]


def test_a_file_that_fails_in_rehearsal_applies_nothing(s3: ResponseServer, empty_db: str, tmp_path: Path) -> None:
    v1 = release(tmp_path, "v1", V1)
    assert send(s3, event(s3, "Create", CONTRACT_V1), v1, empty_db)["Status"] == "SUCCESS"
    broken = release(
        tmp_path,
        "v2",
        V1 | {"002_add_column.sql": "ALTER TABLE things ADD COLUMN seen boolean;\n", "003_oops.sql": "SELECT 1/0;\n"},
    )

    answer = send(s3, event(s3, "Update", CONTRACT_V1, old=CONTRACT_V1), broken, empty_db)

    assert answer["Status"] == "FAILED"
    assert "rehearsal, rolled back: 003_oops.sql failed" in answer["Reason"]
    assert history(empty_db) == ["001_create_things.sql"]
    with psycopg.connect(empty_db) as conn:
        columns = conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = 'things'::regclass").fetchall()
    assert ("seen",) not in columns


def test_no_transaction_files_are_reported_as_not_rehearsed(s3: ResponseServer, empty_db: str, tmp_path: Path) -> None:
    concurrently = (
        "-- migrate: no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS things_note_idx ON things (note);\n"
    )
    v2 = release(tmp_path, "v2", V1 | {"002_index_note.sql": concurrently})

    answer = send(s3, event(s3, "Create", CONTRACT_V1), v2, empty_db)

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert "not rehearsed (no-transaction): 002_index_note.sql" in answer["Reason"]
    assert history(empty_db) == ["001_create_things.sql", "002_index_note.sql"]


# The seed incident, big answers, a database that never answers.


def test_the_seed_incident_on_the_live_database_fails_naming_customer_created(
    s3: ResponseServer, migrated_db: str
) -> None:
    statuses = "'pending_verification', 'verified', 'survey_scheduled', 'survey_completed', 'approved', 'rejected', "
    with psycopg.connect(migrated_db) as conn:
        conn.execute(
            "ALTER TABLE customer_registrations DROP CONSTRAINT valid_status, ADD CONSTRAINT "
            f"customer_registrations_status_check CHECK (status IN ({statuses}'cancelled'))"
        )
    data = contract_data(CONTRACT, WRITES)

    answer = send(s3, event(s3, "Update", data, old=data), MIGRATIONS, migrated_db)

    assert answer["Status"] == "FAILED"
    assert "customer_registrations rejects status 'customer_created'" in answer["Reason"]


def test_the_live_schema_passes_with_the_code_contract_and_no_properties(s3: ResponseServer, migrated_db: str) -> None:
    answer = send(s3, event(s3, "Update"), MIGRATIONS, migrated_db)
    assert (answer["Status"], answer["Reason"]) == ("SUCCESS", "nothing pending; verify is clean")


def test_fifty_drifts_still_fit_in_4096_bytes(s3: ResponseServer, empty_db: str, tmp_path: Path) -> None:
    v1 = release(tmp_path, "v1", V1)
    columns = [f"a_column_the_code_writes_but_no_migration_creates_{n:02d}" for n in range(50)]

    answer = send(s3, event(s3, "Create", thing_contract(["new", "done"], ["status", *columns])), v1, empty_db)

    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith(f"refused, nothing applied: writes to things.{columns[0]} fail")
    shown = answer["Reason"].count("writes to things.")
    assert 0 < shown < 50
    assert f"and {50 - shown} more" in answer["Reason"]
    assert history(empty_db) == []


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


def test_a_database_that_never_answers_fails_in_time_with_one_put(s3: ResponseServer, silent_server: int) -> None:
    url = f"postgresql://postgres@127.0.0.1:{silent_server}/registration"
    request = event(s3, "Update", CONTRACT_V1, old=CONTRACT_V1)
    started = time.monotonic()

    returned = custom_resource.handle(request, Context(remaining_ms=4_000), database_url=url, settings=Settings())

    elapsed = time.monotonic() - started
    assert elapsed < custom_resource.deadline_s(4_000) + 0.5
    assert returned["Status"] == "FAILED"
    assert "could not talk to the database" in returned["Reason"]
    time.sleep(1.0)
    assert len(s3.puts) == 1


def test_the_timer_answers_when_the_work_hangs(
    s3: ResponseServer, silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No route to Secrets Manager (its endpoint never answers): the timer sends FAILED, once."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-3")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{silent_server}")
    settings = Settings(db_secret_arn="arn:aws:secretsmanager:ap-southeast-3:123456789012:secret:registration-dev-db")
    request = event(s3, "Update", CONTRACT_V1, old=CONTRACT_V1)
    started = time.monotonic()

    returned = custom_resource.handle(
        request, Context(remaining_ms=3_000), settings=settings, migrations_dir=MIGRATIONS
    )

    elapsed = time.monotonic() - started
    assert custom_resource.deadline_s(3_000) - 0.1 <= elapsed < custom_resource.deadline_s(3_000) + 0.5
    assert returned["Status"] == "FAILED"
    assert returned["Reason"].startswith("migrate did not finish within 2 s")
    time.sleep(0.5)
    assert len(s3.puts) == 1


def test_delete_drops_nothing_and_needs_no_database(s3: ResponseServer) -> None:
    request = event(s3, "Delete", CONTRACT_V1, physical_id="registration-backend-schema")
    answer = custom_resource.handle(request, Context(), database_url="postgresql://nobody@127.0.0.1:1/none")
    assert answer["Status"] == "SUCCESS"
    assert len(s3.puts) == 1
    assert s3.puts[0]["headers"].get("Content-Type", "") == ""


def test_bad_properties_are_a_failed_answer_not_a_raise(s3: ResponseServer, migrated_db: str) -> None:
    request = event(s3, "Update") | {"ResourceProperties": {"Contract": "{not json"}}
    answer = custom_resource.handle(request, Context(), database_url=migrated_db, migrations_dir=MIGRATIONS)
    assert answer["Status"] == "FAILED"
    assert "JSONDecodeError" in answer["Reason"]


def test_the_pinned_lambda_dispatches_a_cloudformation_request(
    s3: ResponseServer, migrated_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", migrated_db)
    new_container(monkeypatch)
    from app import app

    try:
        with Client(app, stage_name="dev") as client:
            payload = client.lambda_.invoke("migrate", event(s3, "Create")).payload
            # The plain invocation is unchanged.
            assert client.lambda_.invoke("migrate", {"action": "verify"}).payload["ok"] is True
    finally:
        new_container(monkeypatch)
    assert payload["Status"] == "SUCCESS"
    assert s3.answers() == [payload]
