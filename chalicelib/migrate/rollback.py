"""A rollback never answers FAILED: recognise CloudFormation's rollback, look, report, answer SUCCESS.

When an update fails (at the gate, or at any resource after it), CloudFormation
puts the old code back and sends the gate an ``Update`` with the old release's
``ResourceProperties`` (the failed release's as ``OldResourceProperties``).  A
FAILED answer then leaves the stack in ``UPDATE_ROLLBACK_FAILED``: every later
deploy refused until someone continues the rollback by hand.  So a rollback is
recognised for certain, by either of:

- the database's record of the releases the gate accepted
  (``schema_gate_releases``, migration 017): the incoming ``Release`` is the one
  accepted last before the outgoing release, whether that one was accepted or
  refused.  Works offline, without any AWS API;
- CloudFormation's own word: ``DescribeStacks`` says ``UPDATE_ROLLBACK_IN_PROGRESS``
  (asked only when the record does not say rollback; where no route or no
  credentials reach the API, it simply has no word).

A deliberate redeploy of the release just before the current one is a rollback in
all but name and is treated as one; an older release is judged as a forward
release (the full gate), because expand/contract promises only that the previous
release still fits the database.

On a rollback the gate does the least that is safe: no advisory lock, nothing
applied or rehearsed; it reads what the database holds (verify against the
restored code, what that code writes, INVALID indexes left by a failed
``CONCURRENTLY`` build with the SQL that drops them) and reports it in the log
(``{"migrate_gate": …}``), in ``Data`` and as the ``SchemaDrift`` metric, so the
alarm fires.  A database it cannot reach gives ``SchemaDriftUnknown`` = 1 instead.
"""

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from chalicelib.migrate.report import Drift

if TYPE_CHECKING:
    import psycopg

    from chalicelib.migrate.files import MigrationFile
    from chalicelib.migrate.gate import Contract
    from chalicelib.platform.settings import Settings
    from chalicelib.platform.statements import Statement

RELEASES_TABLE = "schema_gate_releases"
ROLLBACK_STATUS = "UPDATE_ROLLBACK_IN_PROGRESS"
DRIFT_METRIC = "SchemaDrift"
UNKNOWN_METRIC = "SchemaDriftUnknown"
# A rollback's reads wait this long at most for a table lock (a PREPARE, a catalog read).
LOCK_TIMEOUT = "1s"
BY_RECORD = "the release accepted before the outgoing one came back"
BY_CLOUDFORMATION = f"CloudFormation says {ROLLBACK_STATUS}"

StackStatus = Callable[[str], "str | None"]
# (Status, the Reason's head, the messages that follow it, Data), as custom_resource sends it.
Answer = tuple[str, str, list[str], dict[str, str]]

log = logging.getLogger(__name__)

_INVALID_INDEXES = """
SELECT ic.relname::text, r.relname::text
  FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class r ON r.oid = i.indrelid
 WHERE ic.relnamespace = current_schema()::regnamespace AND NOT (i.indisvalid AND i.indisready)
 ORDER BY 1
"""


def release_of(properties: Any) -> str | None:
    """The ``Release`` a custom resource's properties carry (the package's sha256), or None."""
    value = properties.get("Release") if isinstance(properties, Mapping) else None
    return str(value) if value else None


def recognise(conn: "psycopg.Connection[Any]", event: Mapping[str, Any], stack_status: StackStatus) -> str | None:
    """How this ``Update`` is known to be a rollback (a phrase for the answer), or None when it is not."""
    if _is_previous_release(
        conn, release_of(event.get("ResourceProperties")), release_of(event.get("OldResourceProperties"))
    ):
        return BY_RECORD
    return by_cloudformation(event, stack_status)


def by_cloudformation(event: Mapping[str, Any], stack_status: StackStatus) -> str | None:
    """``BY_CLOUDFORMATION`` when the stack is rolling back; None otherwise, or when it cannot be asked."""
    stack_id = str(event.get("StackId") or "")
    try:
        status = stack_status(stack_id) if stack_id else None
    except Exception:  # no answer is no word: never a reason to fail
        log.exception("could not read the stack's status")
        status = None
    return BY_CLOUDFORMATION if status == ROLLBACK_STATUS else None


def _is_previous_release(conn: "psycopg.Connection[Any]", incoming: str | None, outgoing: str | None) -> bool:
    if not incoming or not outgoing or incoming == outgoing or not _has_table(conn):
        return False
    row = conn.execute(
        f"SELECT release FROM {RELEASES_TABLE} WHERE release <> %s ORDER BY accepted_at DESC, release LIMIT 1",
        (outgoing,),
    ).fetchone()
    return bool(row and row[0] == incoming)


def record(conn: "psycopg.Connection[Any]", release: str | None) -> None:
    """Note that ``release`` is now the one serving (accepted, or back after a rollback); best effort."""
    if not release:
        return
    try:
        if _has_table(conn):
            conn.execute(
                f"INSERT INTO {RELEASES_TABLE} (release) VALUES (%s) "
                "ON CONFLICT (release) DO UPDATE SET accepted_at = now()",
                (release,),
            )
    except Exception:  # the answer does not depend on it; the next rollback falls back on CloudFormation's word
        log.exception("could not record the accepted release")


def _has_table(conn: "psycopg.Connection[Any]") -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (RELEASES_TABLE,)).fetchone()
    return bool(row and row[0])


def inspect(
    conn: "psycopg.Connection[Any]",
    files: "Sequence[MigrationFile]",
    incoming: "Contract",
    settings: "Settings",
    statements: "Sequence[Statement] | None",
    how: str,
    release: str | None,
) -> Answer:
    """Read-only look at the database for the restored code; SUCCESS whatever it finds."""
    from chalicelib.migrate import runner
    from chalicelib.migrate.catalog import read_catalog
    from chalicelib.migrate.rules import writable_drift

    try:
        conn.execute("SELECT set_config('lock_timeout', %s, false)", (LOCK_TIMEOUT,))
        leftovers = [tuple(row) for row in conn.execute(_INVALID_INDEXES).fetchall()]
        writes = writable_drift(read_catalog(conn, sorted(incoming.tables())), incoming.enums, incoming.writes)
        report = runner.verify(conn, files, incoming.enums, action="rollback", settings=settings, statements=statements)
    except runner.database_error() as error:
        return unknown(how, f"the database stopped answering while the gate looked: {error}".strip())
    left = [
        Drift(
            "index_invalid",
            f"INVALID index {name} on {table} (left by a failed CONCURRENTLY build: maintained on every write, "
            f"and a unique one still rejects duplicates): DROP INDEX CONCURRENTLY IF EXISTS {name};",
            f"DROP INDEX CONCURRENTLY IF EXISTS {name};",
        )
        for name, table in leftovers
    ]
    named = {name for name, _ in leftovers}
    others = [d for d in report.drift if not (d.kind == "index_invalid" and any(n in d.message for n in named))]
    drift = [*left, *writes, *(d for d in others if d.message not in {w.message for w in writes})]
    record(conn, release)
    report.drift = drift
    as_dict = {**report.as_dict(), "outcome": "rollback", "recognised_by": how}
    print(json.dumps({"migrate_gate": as_dict}, default=str), flush=True)  # the operator greps the log for it
    _emit(DRIFT_METRIC, len(drift))
    data = {
        "Outcome": "rollback",
        "Applied": "0",
        "Drift": str(len(drift)),
        "Leftovers": ", ".join(sorted(named)),
    }
    head = f"rollback ({how}): nothing applied, no lock taken; "
    if not drift:
        return "SUCCESS", head + "the database is as this code expects", [], data
    head += f"{len(drift)} drift(s) reported as {DRIFT_METRIC} (the migrate function's log has the whole report): "
    return "SUCCESS", head, [d.message for d in drift], data


def unknown(how: str, why: str) -> Answer:
    """SUCCESS without having looked: drift unknown, said so, and ``SchemaDriftUnknown`` = 1 for the alarm."""
    report = {"action": "rollback", "outcome": "rollback", "recognised_by": how, "drift": None, "why": why}
    print(json.dumps({"migrate_gate": report}, default=str), flush=True)
    _emit(UNKNOWN_METRIC, 1)
    head = (
        f"rollback ({how}): nothing applied, no lock taken; drift unknown: {why}; "
        f'run {{"action": "verify"}} on migrate once the database answers ({UNKNOWN_METRIC} alarm)'
    )
    return "SUCCESS", head, [], {"Outcome": "rollback", "Applied": "0", "Drift": "unknown"}


def _emit(metric: str, value: int) -> None:
    from chalicelib.platform import emf

    with emf.invocation("migrate"):
        emf.count(metric, value)


def stack_status(stack_id: str) -> str | None:
    """``DescribeStacks``'s ``StackStatus`` for ``stack_id``; None where there is no credential to ask with.

    One try, short timeouts: a VPC without a route to the CloudFormation API must not
    eat the gate's deadline.  Raises what boto3 raises (the caller treats it as no word).
    """
    if not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
        return None  # outside Lambda and without credentials (tests, make run): no stack to ask
    import boto3
    from botocore.config import Config

    region = stack_id.split(":")[3] if stack_id.count(":") >= 5 else None
    config = Config(connect_timeout=2, read_timeout=3, retries={"total_max_attempts": 1})
    client = boto3.client("cloudformation", region_name=region, config=config)
    stacks = client.describe_stacks(StackName=stack_id)["Stacks"]
    return str(stacks[0]["StackStatus"]) if stacks else None
