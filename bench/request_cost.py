"""Request cost in-process: our handler beside the same request through the framework alone.

Usage: python bench/request_cost.py [--database-url URL] [--requests N] [--rows N]

For ``POST /registrations``, one transition (``POST /registrations/{id}/schedule-survey``
with a ``cs`` token) and ``GET /registrations`` (one page of 20): median and p99 of
``app.app(event, context)`` (what Lambda calls; warm, on the container's one
connection), beside the floors of ``bench/floors/request_floor.py`` (a Chalice app
and a Powertools ``APIGatewayRestResolver`` that answer the same event with the same
statement, on the same connection, with the same status and body) and the bare
statement (imported from ``chalicelib.registrations.repository``, so it is the same
SQL) run directly with psycopg.  The four are called in turn, request by request, in
one process.  The target is the handler against the Chalice floor: what our code adds
to the framework's own per-request work.  Round trips per request are counted from
libpq's protocol trace, after warm-up (psycopg prepares a statement on its sixth use;
that one extra round trip happens once per container).

``POST /registrations`` sends the OTP message after commit when WhatsApp is
configured: it is measured without (the send is skipped) and with the fake Cloud
API on loopback (``devstack.whatsapp.FakeWhatsApp``).  The request logs are
formatted and written to /dev/null, as Lambda would write them to CloudWatch.
"""

import argparse
import copy
import importlib.util
import json
import logging
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from bench import _support

# Our handler against the Chalice floor (the same request through Chalice, without our code).
TARGET_RATIO = 1.15
WARMUP = 10
TRACED = 10
# A week ahead: schedule-survey takes only the future (90 days at most).
SCHEDULE = {
    "scheduled_at": (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0).isoformat(),
    "surveyor": "Budi",
}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rows", type=int, default=2000, help="registrations in the table the list pages through")
    args = parser.parse_args(argv)
    server = _support.server(args.database_url)
    n = args.requests
    result: dict[str, Any] = {"requests": n}
    with _support.database(server) as url, _quiet_logs():
        app = _support.use_database(url, WHATSAPP_API_URL=None, WHATSAPP_PHONE_NUMBER_ID=None, WHATSAPP_TOKEN=None)
        _support.seed_registrations(url, args.rows, _support.STATUS_MIX, start=10_000_000)
        package = _package(url)
        verified = iter(_support.seed_registrations(url, n + WARMUP + TRACED, "verified", start=20_000_000))
        cs = _support.staff_token("cs")
        floors = _floors(app)
        result["POST /registrations"] = _compare(
            app,
            floors,
            lambda: _create_event(package),
            lambda: _create_params(package),
            _sql("_INSERT_REGISTRATION"),
            n,
            same_event=False,
        )
        # schedule-survey is allowed from survey_scheduled too: each of the four moves the same registration.
        result["POST /registrations/{id}/schedule-survey"] = _compare(
            app,
            floors,
            lambda: _schedule_event(next(verified), cs),
            lambda event: _schedule_params(event["pathParameters"]["registration_id"]),
            _sql("_TRANSITION"),
            n,
        )
        result["GET /registrations"] = _compare(
            app, floors, lambda: _list_event(cs), lambda event: _list_params(), _sql("_LIST"), n
        )
        result["POST /registrations, OTP sent to the fake WhatsApp"] = _with_whatsapp(url, package, n)
        app.runtime.database.reset()
    result["targets"] = _targets(result)
    return result


def _floors(app: Any) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
    """The framework floors (``bench/floors/request_floor.py``) on the app's own connection."""
    from bench.floors import request_floor

    def connection() -> Any:
        return app.runtime.database.run(lambda conn: conn)

    floors: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}
    chalice_floor = request_floor.chalice_app(connection)
    floors["chalice_floor"] = lambda event: chalice_floor(event, _support.LambdaContext())
    if importlib.util.find_spec("aws_lambda_powertools"):  # requirements-bench.txt
        powertools = request_floor.powertools_handler(connection)
        floors["powertools_floor"] = lambda event: powertools(event, _support.LambdaContext())
    return floors


def _compare(
    app: Any,
    floors: dict[str, Callable[[dict[str, Any]], dict[str, Any]]],
    make_event: Callable[[], dict[str, Any]],
    make_params: Callable[..., dict[str, Any]],
    sql: str,
    n: int,
    same_event: bool = True,
) -> dict[str, Any]:
    """Our handler, each framework floor and the bare statement, interleaved call by call on one
    connection, so that the machine's noise falls on all alike.

    ``same_event``: the floors get a copy of the handler's event (else a new one of the same
    shape: a registration's phone and e-mail can be used once).
    """
    conn = app.runtime.database.run(lambda c: c)
    callers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "handler": lambda event: app.app(event, _support.LambdaContext()),
        # The same with the request log line off: how much of what we add is that one line.
        "handler_without_log_line": lambda event: _without_log_line(app, event),
        **floors,
    }
    rounds = []
    for _ in range(n + WARMUP):
        event = make_event()
        events = {name: (copy.deepcopy(event) if same_event else make_event()) for name in callers}
        params = make_params(event) if same_event else make_params()
        rounds.append((events, params))
    samples: dict[str, list[float]] = {name: [] for name in (*callers, "bare_sql")}
    cpu: dict[str, list[float]] = {name: [] for name in samples}
    answers: dict[str, dict[str, Any]] = {}
    for i, (events, params) in enumerate(rounds):
        for name, call in callers.items():
            started_cpu = time.thread_time()
            seconds, answers[name] = _support.timed(call, events[name])
            cpu_s = time.thread_time() - started_cpu
            if i >= WARMUP:
                samples[name].append(seconds)
                cpu[name].append(cpu_s)
        started_cpu = time.thread_time()
        seconds = _support.timed(lambda p=params: conn.execute(sql, p).fetchall())[0]
        if i >= WARMUP:
            samples["bare_sql"].append(seconds)
            cpu["bare_sql"].append(time.thread_time() - started_cpu)
        if i == 0:
            _same_answers(answers)
    figures: dict[str, Any] = {name: _support.summary(values) for name, values in samples.items()}
    # This process's CPU time per call (the server's is not in it): far less disturbed by a busy
    # machine than wall time.
    figures["cpu_us"] = {name: round(statistics.median(values) * 1e6, 1) for name, values in cpu.items()}
    figures["cpu_us"]["handler_own"] = round(figures["cpu_us"]["handler"] - figures["cpu_us"]["bare_sql"], 1)
    handler_ms = figures["handler"]["median_ms"]
    for name in floors:
        figures[f"x_{name}"] = _support.ratio(handler_ms, figures[name]["median_ms"])
        figures[f"cpu_x_{name}"] = _support.ratio(figures["cpu_us"]["handler"], figures["cpu_us"][name])
    figures["x_bare_sql_median"] = _support.ratio(handler_ms, figures["bare_sql"]["median_ms"])
    figures["x_chalice_floor_without_log_line"] = _support.ratio(
        figures["handler_without_log_line"]["median_ms"], figures["chalice_floor"]["median_ms"]
    )
    # What our code adds to the framework's request (routing, event, response, the statement).
    figures["handler_overhead_ms"] = round(handler_ms - figures["chalice_floor"]["median_ms"], 3)
    figures["round_trips_per_request"] = _round_trips(app, [make_event() for _ in range(TRACED)])
    return figures


def _without_log_line(app: Any, event: dict[str, Any]) -> dict[str, Any]:
    app.request_log.disabled = True
    try:
        return app.app(event, _support.LambdaContext())  # type: ignore[no-any-return]
    finally:
        app.request_log.disabled = False


def _same_answers(answers: dict[str, dict[str, Any]]) -> None:
    """Every caller answered alike: the status, and a body with the same fields (the ids differ)."""

    def shape(answer: dict[str, Any]) -> tuple[int, Any]:
        body = json.loads(answer["body"])
        if isinstance(body, dict) and isinstance(body.get("items"), list):
            return answer["statusCode"], (sorted(body), len(body["items"]), sorted(body["items"][0]))
        return answer["statusCode"], sorted(body)

    shapes = {name: shape(answer) for name, answer in answers.items()}
    if len(set(map(repr, shapes.values()))) != 1:
        raise AssertionError(f"the floors answer otherwise than the handler: {shapes}")


def _call(app: Any, event: dict[str, Any]) -> None:
    response = app.app(event, _support.LambdaContext())
    assert response["statusCode"] in (200, 201), response


def _round_trips(app: Any, events: list[dict[str, Any]]) -> dict[str, Any]:
    conn = app.runtime.database.run(lambda conn: conn)
    counts = []
    for event in events:
        with _support.count_round_trips(conn) as counted:
            _call(app, event)
        counts.append(counted.count)
    return {"median": statistics.median(counts), "max": max(counts)}


def _with_whatsapp(url: str, package: str, n: int) -> dict[str, Any]:
    from devstack.whatsapp import FakeWhatsApp

    with FakeWhatsApp() as fake:
        app = _support.use_database(
            url,
            WHATSAPP_API_URL=fake.api_url,
            WHATSAPP_PHONE_NUMBER_ID=fake.phone_number_id,
            WHATSAPP_TOKEN=str(fake.token),
        )
        events = [_create_event(package) for _ in range(n + WARMUP)]
        samples = [_support.timed(_call, app, event)[0] for event in events][WARMUP:]
        trips = _round_trips(app, [_create_event(package) for _ in range(TRACED)])
        delivered = len(fake.delivered)
    _support.use_database(url, WHATSAPP_API_URL=None, WHATSAPP_PHONE_NUMBER_ID=None, WHATSAPP_TOKEN=None)
    assert delivered == n + WARMUP + TRACED, f"{delivered} OTP messages delivered"
    return {
        "handler": _support.summary(samples),
        "round_trips_per_request": trips,
        "whatsapp_messages_delivered": delivered,
    }


def _sql(name: str) -> str:
    from chalicelib.registrations import repository

    return str(getattr(repository, name))


def _package(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        return _support.insert_package(conn)


def _unique_body(package: str) -> dict[str, Any]:
    unique = uuid.uuid4().int % 10**8
    return {
        "full_name": "Siti Nurhaliza",
        "email": f"siti{unique}@example.co.id",
        "phone": f"0812{unique:08d}",
        "address": "Jl. Merdeka No. 1",
        "city": "Bandung",
        "package_id": package,
    }


def _create_event(package: str) -> dict[str, Any]:
    return _support.api_event("POST", "/registrations", "/registrations", body=_unique_body(package))


def _create_params(package: str) -> dict[str, Any]:
    from psycopg.types.json import Jsonb

    from chalicelib.registrations import otp, service

    body = _unique_body(package)
    registration_id = uuid.uuid4()
    code = otp.new_code()
    return {
        **body,
        "phone": "+62" + body["phone"][1:],
        "notes": None,
        "id": registration_id,
        "otp_hash": otp.code_hash(_support.OTP_KEY, registration_id, code),
        "otp_valid_for": otp.VALID_FOR,
        "otp_template": otp.TEMPLATE,
        "otp_payload": Jsonb(otp.message_payload(code)),
        # The OTP budgets and the squatting sweep are part of the statement (issue 16).
        **otp.SendBudget("192.0.2.10", _support.OTP_LIMIT, _support.OTP_LIMIT).params(),
        "stale_after": timedelta(hours=24),
        "stale_reason": service.STALE_REASON,
        "pending": "pending_verification",
        "cancelled": "cancelled",
        "cancel": "cancel",
        "correlation_id": str(uuid.uuid4()),
    }


def _schedule_event(registration_id: str, token: dict[str, str]) -> dict[str, Any]:
    return _support.api_event(
        "POST",
        "/registrations/{registration_id}/{action}",
        f"/registrations/{registration_id}/schedule-survey",
        body=SCHEDULE,
        headers=token,
        path_parameters={"registration_id": registration_id, "action": "schedule-survey"},
    )


def _schedule_params(registration_id: str) -> dict[str, Any]:
    from chalicelib.workflow import TRANSITION_BY_ACTION, Action

    transition = TRANSITION_BY_ACTION[Action.SCHEDULE_SURVEY]
    return {
        "id": uuid.UUID(registration_id),
        "action": Action.SCHEDULE_SURVEY.value,
        "to_status": transition.target.value,
        "from_statuses": [s.value for s in transition.sources],
        "require_feasible": False,
        "actor": "bench-cs",
        "reason": None,
        "survey_scheduled_at": datetime.fromisoformat(SCHEDULE["scheduled_at"]).astimezone(UTC),
        "surveyor": SCHEDULE["surveyor"],
        "survey_feasible": None,
        "survey_notes": None,
    }


def _list_event(token: dict[str, str]) -> dict[str, Any]:
    return _support.api_event("GET", "/registrations", "/registrations", headers=token)


def _list_params() -> dict[str, Any]:
    return dict.fromkeys(
        ("status", "city", "created_from", "created_to", "after_created_at", "after_id", "assigned_to")
    ) | {"limit": 21}


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """Request logs (and each invocation's EMF metrics line, on stdout) formatted and written as usual,
    but to /dev/null rather than the terminal."""
    import app  # noqa: F401  (configures the logs)

    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    streams = [h.stream for h in handlers]
    with open(os.devnull, "w") as sink, redirect_stdout(sink):
        for handler in handlers:
            handler.setStream(sink)
        try:
            yield
        finally:
            for handler, stream in zip(handlers, streams, strict=True):
                handler.setStream(stream)


def _targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name in ("POST /registrations", "POST /registrations/{id}/schedule-survey", "GET /registrations"):
        figures = result[name]
        value = (
            f"{figures['handler']['median_ms']:.3f} ms vs {figures['chalice_floor']['median_ms']:.3f} ms"
            f" = {figures['x_chalice_floor']} x (CPU {figures['cpu_x_chalice_floor']} x; bare SQL"
            f" {figures['bare_sql']['median_ms']:.3f} ms"
        )
        if "powertools_floor" in figures:
            value += f"; Powertools floor {figures['powertools_floor']['median_ms']:.3f} ms"
        rows.append(
            {
                "figure": f"request cost: {name}",
                "value": value + ")",
                "target": f"<= {TARGET_RATIO} x the Chalice floor",
                "met": figures["x_chalice_floor"] <= TARGET_RATIO,
            }
        )
    for name in ("POST /registrations", "POST /registrations/{id}/schedule-survey"):
        trips = result[name]["round_trips_per_request"]
        rows.append(
            {
                "figure": f"round trips: {name}",
                "value": f"{trips['median']} (max {trips['max']})",
                "target": "1",
                "met": trips["max"] == 1,
            }
        )
    return rows


if __name__ == "__main__":
    _support.write_json(main())
