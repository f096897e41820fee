"""The ``migrate`` Lambda as a CloudFormation custom resource: the schema gate inside the stack.

``make package`` adds ``SchemaMigration`` (``Custom::SchemaMigration``) to the
template; every other function depends on it, so CloudFormation updates
``migrate``, sends it ``Create`` or ``Update`` here, and switches the other
functions' code only after a SUCCESS.  A FAILED answer rolls the stack back
while the old code keeps serving.

The answer is one HTTP PUT of the standard response to the presigned
``ResponseURL``, at most 4,096 bytes, sent exactly once and before the
function's own timeout: the work runs in a thread, and a timer answers FAILED
if it has not finished when the deadline comes (CloudFormation would otherwise
wait an hour).  Nothing raises after answering: CloudFormation invokes the
function asynchronously, and a raise makes Lambda run it again.

- ``Create``/``Update``: ``gate.run_gate`` (rehearse, both contracts, apply); a
  release it accepts is recorded (``rollback.record``).
- An ``Update`` that is CloudFormation's rollback (``rollback.recognise``): no lock,
  nothing applied, what the database holds reported; always SUCCESS.
- ``Delete``: drops nothing, answers SUCCESS.  Any other ``RequestType``: FAILED,
  and no database touched.
- When the timer answers, the gate's database session is ended (terminated from a
  second connection): a Lambda environment frozen after the return must not keep
  the session, and with it the advisory lock every later deploy waits for.
- The physical id never changes, so an update is never replace-then-delete.
"""

import dataclasses
import functools
import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chalicelib.migrate import rollback
from chalicelib.migrate.report import Drift, Report

PHYSICAL_ID = "registration-backend-schema"
MAX_BODY_BYTES = 4096
DEFAULT_REMAINING_MS = 300_000
PUT_TIMEOUT_S = 10.0
PUT_ATTEMPTS = 5

log = logging.getLogger(__name__)

Put = Callable[[str, bytes], None]
# (Status, the Reason's head, the drift messages that follow it, Data)
Answer = tuple[str, str, list[str], dict[str, str]]


def is_request(event: Any) -> bool:
    """A CloudFormation custom-resource request (not a ``{"action": …}`` invocation)."""
    return isinstance(event, Mapping) and "RequestType" in event and "ResponseURL" in event


def deadline_s(remaining_ms: float) -> float:
    """Seconds the work may take: the time left, less a margin for the PUT and the return."""
    remaining = remaining_ms / 1000
    margin = max(1.0, min(15.0, remaining * 0.1))
    return max(0.5, remaining - margin)


def handle(
    event: Mapping[str, Any],
    context: Any,
    *,
    migrations_dir: Path | None = None,
    database_url: str | None = None,
    settings: Any = None,
    put: Put | None = None,
    statements: Sequence[Any] | None = None,
    stack_status: rollback.StackStatus | None = None,
) -> dict[str, Any]:
    """Answer one custom-resource request; returns what was sent (never raises).

    ``stack_status`` reads the stack's status (``DescribeStacks`` by default).
    """
    remaining = _remaining_ms(context)
    budget = deadline_s(remaining)
    # The PUT's retries stop half a second before Lambda's clock runs out.
    answer = _Answer(event, put or functools.partial(put_response, deadline=time.monotonic() + remaining / 1000 - 0.5))
    kind = event.get("RequestType")
    if kind == "Delete":
        answer.send("SUCCESS", "Delete drops nothing: the schema and its data stay as they are")
        return answer.sent or {}
    if kind not in ("Create", "Update"):
        answer.send(
            "FAILED",
            f"unknown RequestType {str(kind)[:64]!r}: migrate answers Create, Update and Delete; "
            "nothing was done and no database was touched",
        )
        return answer.sent or {}
    state: dict[str, Any] = {"stack_status": stack_status or rollback.stack_status, "answer": answer}

    def work() -> None:
        try:
            status, head, messages, data = _create_or_update(
                event, budget, state, migrations_dir, database_url, settings, statements
            )
        except Exception as error:  # anything at all becomes a FAILED answer, never a raise
            log.exception("migrate gate failed")
            status, head, messages, data = "FAILED", f"migrate failed: {type(error).__name__}: {error}", [], {}
        answer.send(status, head, messages, data)

    worker = threading.Thread(target=work, name="schema-gate", daemon=True)
    worker.start()
    worker.join(budget)
    if worker.is_alive():
        how = state.get("rollback") or (kind == "Update" and rollback.by_cloudformation(event, state["stack_status"]))
        if how:
            answer.send(*rollback.unknown(how, f"the gate's look did not finish within {budget:.0f} s"))
        else:
            answer.send(
                "FAILED",
                f"migrate did not finish within {budget:.0f} s (the database did not answer, or a lock never came): "
                "the stack rolls back; the history table says what, if anything, was applied; retry the deploy",
            )
        _end_session(state)
    return answer.sent or {}


def _create_or_update(
    event: Mapping[str, Any],
    budget: float,
    state: dict[str, Any],
    migrations_dir: Path | None,
    database_url: str | None,
    settings: Any,
    statements: Sequence[Any] | None = None,
) -> "Answer":
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from chalicelib.migrate import gate, runner
    from chalicelib.migrate.files import MigrationFilesError, load_migrations
    from chalicelib.platform import database as db
    from chalicelib.platform.runtime import Runtime

    started = time.monotonic()
    incoming = _contract(event.get("ResourceProperties"), default_to_code=True)
    outgoing = _contract(event.get("OldResourceProperties"), default_to_code=False)
    runtime = Runtime(settings=settings)
    settings = _bounded(runtime.settings, budget)
    try:
        files = load_migrations(migrations_dir)
    except MigrationFilesError as error:
        return _answer_for(_failed("migration_files_invalid", str(error)))
    release = rollback.release_of(event.get("ResourceProperties"))
    try:
        url = database_url or db.conninfo(settings, runtime.secrets)
        options = conninfo_to_dict(url).get("options") or ""
        statement_ms = int(budget * 1000)
        url = make_conninfo(url, options=f"{options} -c statement_timeout={statement_ms}".strip())
        conn = db.connect(url, settings)
    except Exception as error:  # no secret, no route, no server: a rollback still answers SUCCESS
        why = f"could not talk to the database: {error}".strip()
        how = event.get("RequestType") == "Update" and rollback.by_cloudformation(event, state["stack_status"])
        if how:
            return rollback.unknown(how, why)
        return _answer_for(_failed("database_unavailable", why))
    state.update(conn=conn, url=url, pid=conn.info.backend_pid)
    try:
        with conn:
            if state["answer"].sent is not None:
                return _answer_for(_failed("timeout", "the timer answered first"))  # and nothing is done
            how = event.get("RequestType") == "Update" and rollback.recognise(conn, event, state["stack_status"])
            if how:
                state["rollback"] = how
                return rollback.inspect(conn, files, incoming, settings, statements, how, release)
            result = gate.run_gate(conn, files, incoming, outgoing, settings, statements)
            if result.report.ok:
                rollback.record(conn, release)
    except runner.MigrationLockTimeoutError as error:
        return _answer_for(_failed("lock_timeout", str(error)))
    except runner.database_error() as error:
        return _answer_for(_failed("database_unavailable", f"could not talk to the database: {error}".strip()))
    result.report.duration_ms = round((time.monotonic() - started) * 1000, 1)
    return _answer_for(result)


def _answer_for(result: Any) -> "Answer":
    """(Status, Reason, Data) for a gate result; the whole report goes to the log."""
    report = result.as_dict()
    print(json.dumps({"migrate_gate": report}, default=str), flush=True)  # the operator greps the log for it
    applied = report["applied"]
    data = {"Applied": str(len(applied)), "Drift": str(len(report["drift"])), "Outcome": report["outcome"]}
    if report["ok"]:
        if result.outcome == "ahead":
            reason = (
                "the database is ahead of this code (a rollback after a release that migrated): it still accepts "
                "everything this code writes, so nothing was applied"
            )
        elif applied:
            reason = f"applied {len(applied)} file(s) ({', '.join(applied)}); verify is clean"
        else:
            reason = "nothing pending; verify is clean"
        if report["not_rehearsed"]:
            reason += f"; not rehearsed (no-transaction): {', '.join(report['not_rehearsed'])}"
        return "SUCCESS", reason, [], data
    if result.outcome == "refused":
        head = "refused, nothing applied: "
    elif applied:
        head = f"applied {', '.join(applied)}, then: "
    else:
        head = "failed, nothing applied: "
    return "FAILED", head, [d["message"] for d in report["drift"]], data


def _failed(kind: str, message: str) -> Any:
    from chalicelib.migrate.gate import GateResult

    return GateResult(Report(action="gate", drift=[Drift(kind, message, None)]), "failed")


def _contract(properties: Any, *, default_to_code: bool) -> Any:
    """The contract a resource's properties carry (a JSON string or object); the code's when absent."""
    from chalicelib.migrate.gate import Contract
    from chalicelib.schema_contract import CONTRACT, WRITES, contract_from_data

    raw = properties.get("Contract") if isinstance(properties, Mapping) else None
    if raw is None:
        return Contract(CONTRACT, WRITES) if default_to_code else None
    enums, writes = contract_from_data(json.loads(raw) if isinstance(raw, str) else raw)
    return Contract(enums, writes)


def _bounded(settings: Any, budget: float) -> Any:
    """The settings with every wait shorter than the deadline."""
    return dataclasses.replace(
        settings,
        db_connect_timeout_s=max(1, min(settings.db_connect_timeout_s, int(budget / 3))),
        migrate_wait_for_lock_s=min(settings.migrate_wait_for_lock_s, budget / 3),
        migrate_statement_timeout=f"{int(budget * 1000)}ms",
    )


def _remaining_ms(context: Any) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return float(remaining()) if callable(remaining) else float(DEFAULT_REMAINING_MS)


def _end_session(state: Mapping[str, Any]) -> None:
    """End the gate's database session after the timer answered (best effort, never raises).

    Cancelling the statement is not enough: when the handler returns, Lambda freezes
    the environment, and a frozen session keeps its session-level advisory lock until
    TCP keepalive drops it (minutes to hours).  A second connection terminates the
    backend and waits until it is gone; when that connection cannot be had, the
    statement is cancelled at least.
    """
    pid, url, conn = state.get("pid"), state.get("url"), state.get("conn")
    if pid is None or url is None or conn is None:
        return
    try:
        import psycopg

        with psycopg.connect(url, autocommit=True, connect_timeout=2) as other:
            row = other.execute("SELECT pg_terminate_backend(%s, 3000)", (pid,)).fetchone()
        log.warning("migrate: ended the gate's database session %s after the timer answered (%s)", pid, row)
        return
    except Exception:  # the answer is sent: nothing here may raise
        log.exception("could not terminate the gate's database session %s", pid)
    try:
        conn.cancel_safe(timeout=2.0)
    except Exception:
        log.exception("could not cancel the migrate statement")


class _Answer:
    """Sends the response once: whichever of the work and the timer comes first."""

    def __init__(self, event: Mapping[str, Any], put: Put) -> None:
        self.event = event
        self.put = put
        self.lock = threading.Lock()
        self.sent: dict[str, Any] | None = None

    def send(self, status: str, head: str, messages: Sequence[str] = (), data: Mapping[str, str] | None = None) -> bool:
        with self.lock:
            if self.sent is not None:
                return False
            body = response_body(self.event, status, head, messages, data or {})
            self.sent = json.loads(body)
        try:
            self.put(str(self.event["ResponseURL"]), body)
        except Exception:  # logged; CloudFormation then waits for its own timeout
            log.exception("could not PUT the custom resource response")
        return True


def response_body(
    event: Mapping[str, Any], status: str, head: str, messages: Sequence[str], data: Mapping[str, str]
) -> bytes:
    """The standard response, at most ``MAX_BODY_BYTES``.

    ``Reason`` is ``head`` and then the messages (each drift's effect first),
    joined by `` | ``; when they do not all fit, the first ones stay and the
    reason says how many more there are.
    """
    body = {
        "Status": status,
        "Reason": "",
        "PhysicalResourceId": str(event.get("PhysicalResourceId") or PHYSICAL_ID),
        "StackId": event.get("StackId"),
        "RequestId": event.get("RequestId"),
        "LogicalResourceId": event.get("LogicalResourceId"),
        "NoEcho": False,
        "Data": dict(data),
    }
    room = MAX_BODY_BYTES - _size(body)
    body["Reason"] = _fit(head, list(messages), room)
    encoded = json.dumps(body).encode()
    assert len(encoded) <= MAX_BODY_BYTES, len(encoded)
    return encoded


def _fit(head: str, messages: list[str], room: int) -> str:
    def text(kept: list[str], more: int) -> str:
        tail = f" | … and {more} more (the migrate function's log has the whole report)" if more else ""
        return head + " | ".join(kept) + tail

    for keep in range(len(messages), 0, -1):
        candidate = text(messages[:keep], len(messages) - keep)
        if _size(candidate) <= room:
            return candidate
    # Not even the first message fits: cut it.
    first, more = (messages[0] if messages else ""), max(0, len(messages) - 1)
    while first and _size(text([first + "…"], more)) > room:
        first = first[: max(0, len(first) - 64)]
    candidate = text([first + "…"] if first else [], more)
    return candidate if _size(candidate) <= room else candidate[: room // 4]


def _size(value: Any) -> int:
    """Bytes ``value`` takes in the JSON body (a string without its quotes)."""
    encoded = len(json.dumps(value).encode())
    return encoded - 2 if isinstance(value, str) else encoded


def put_response(url: str, body: bytes, *, deadline: float | None = None) -> None:
    """PUT ``body`` to the presigned ``ResponseURL`` (S3 needs no content type, and no credentials).

    Up to ``PUT_ATTEMPTS`` tries, 0.5, 1, 2 and 4 s apart, as AWS's ``cfn-response``
    does; none starts when fewer than its pause and a second remain before
    ``deadline`` (``time.monotonic()``).  Raises the last error.
    """
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"ResponseURL is not an HTTP URL: {url[:40]!r}")
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked above)
        url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    for attempt in range(1, PUT_ATTEMPTS + 1):
        left = PUT_TIMEOUT_S if deadline is None else deadline - time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=max(0.5, min(PUT_TIMEOUT_S, left))) as response:  # noqa: S310
                response.read()
            return
        except OSError as error:
            pause = 0.5 * 2 ** (attempt - 1)
            left = PUT_TIMEOUT_S if deadline is None else deadline - time.monotonic()
            if attempt == PUT_ATTEMPTS or left < pause + 1:
                raise
            log.warning("PUT of the custom resource response failed (try %s): %s; again in %s s", attempt, error, pause)
            time.sleep(pause)
