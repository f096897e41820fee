"""Request cost in-process: the Chalice handler called with API Gateway events, beside the same SQL.

Usage: python bench/request_cost.py [--database-url URL] [--requests N] [--rows N]

For ``POST /registrations``, one transition (``POST /registrations/{id}/schedule-survey``
with a ``cs`` token) and ``GET /registrations`` (one page of 20): median and p99 of
``app.app(event, context)`` (what Lambda calls; warm, on the container's one
connection), beside the statement the handler sends (imported from
``chalicelib.registrations.repository``, so it is the same SQL) run directly with psycopg on one
connection, with the same parameters made ahead.  Round trips per request are
counted from libpq's protocol trace, after warm-up (psycopg prepares a statement
on its sixth use; that one extra round trip happens once per container).

``POST /registrations`` sends the OTP message after commit when WhatsApp is
configured: it is measured without (the send is skipped) and with the fake Cloud
API on loopback (``devstack.whatsapp.FakeWhatsApp``).  The request logs are
formatted and written to /dev/null, as Lambda would write them to CloudWatch.
"""

import argparse
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

TARGET_RATIO = 1.5
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
        verified = iter(_support.seed_registrations(url, 2 * (n + WARMUP + TRACED), "verified", start=20_000_000))
        cs = _support.staff_token("cs")
        with psycopg.connect(url, autocommit=True) as bare:
            result["POST /registrations"] = _compare(
                app,
                bare,
                lambda: _create_event(package),
                lambda: _create_params(package),
                _sql("_INSERT_REGISTRATION"),
                n,
            )
            result["POST /registrations/{id}/schedule-survey"] = _compare(
                app,
                bare,
                lambda: _schedule_event(next(verified), cs),
                lambda: _schedule_params(next(verified)),
                _sql("_TRANSITION"),
                n,
            )
            result["GET /registrations"] = _compare(
                app, bare, lambda: _list_event(cs), lambda: _list_params(), _sql("_LIST"), n
            )
        result["POST /registrations, OTP sent to the fake WhatsApp"] = _with_whatsapp(url, package, n)
        app.runtime.database.reset()
    result["targets"] = _targets(result)
    return result


def _compare(
    app: Any,
    bare: psycopg.Connection[Any],
    make_event: Callable[[], dict[str, Any]],
    make_params: Callable[[], dict[str, Any]],
    sql: str,
    n: int,
) -> dict[str, Any]:
    """The handler and the bare statement, interleaved call by call, so that noise falls on both."""
    events = [make_event() for _ in range(n + WARMUP)]
    params = [make_params() for _ in range(n + WARMUP)]
    handler: list[float] = []
    plain: list[float] = []
    handler_cpu: list[float] = []
    plain_cpu: list[float] = []
    for i, (event, p) in enumerate(zip(events, params, strict=True)):
        cpu = time.thread_time()
        handler_s = _support.timed(_call, app, event)[0]
        handler_cpu_s, cpu = time.thread_time() - cpu, time.thread_time()
        plain_s = _support.timed(lambda p=p: bare.execute(sql, p).fetchall())[0]
        plain_cpu_s = time.thread_time() - cpu
        if i >= WARMUP:
            handler.append(handler_s)
            plain.append(plain_s)
            handler_cpu.append(handler_cpu_s)
            plain_cpu.append(plain_cpu_s)
    figures: dict[str, Any] = {"handler": _support.summary(handler), "bare_sql": _support.summary(plain)}
    # This process's CPU time per call (the server's is not in it): what the handler adds to
    # the same statement's client side, and far less disturbed by a busy machine than wall time.
    figures["cpu_us"] = {
        "handler": round(statistics.median(handler_cpu) * 1e6, 1),
        "bare_sql": round(statistics.median(plain_cpu) * 1e6, 1),
    }
    figures["cpu_us"]["handler_own"] = round(figures["cpu_us"]["handler"] - figures["cpu_us"]["bare_sql"], 1)
    figures["x_bare_sql_median"] = _support.ratio(figures["handler"]["median_ms"], figures["bare_sql"]["median_ms"])
    # The handler's own cost (routing, JWT, pydantic, logging, JSON) is fixed per request; over
    # loopback the bare statement is a fraction of a millisecond, over a network it is not.
    overhead = figures["handler"]["median_ms"] - figures["bare_sql"]["median_ms"]
    figures["handler_overhead_ms"] = round(overhead, 3)
    figures["x_bare_sql_at_1ms_rtt"] = _support.ratio(
        figures["handler"]["median_ms"] + 1, figures["bare_sql"]["median_ms"] + 1
    )
    figures["round_trips_per_request"] = _round_trips(app, [make_event() for _ in range(TRACED)])
    return figures


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
    return dict.fromkeys(("status", "city", "created_from", "created_to", "after_created_at", "after_id")) | {
        "limit": 21
    }


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
        rows.append(
            {
                "figure": f"request cost: {name}",
                "value": f"{figures['handler']['median_ms']:.2f} ms vs {figures['bare_sql']['median_ms']:.2f} ms bare"
                f" = {figures['x_bare_sql_median']} x (p99 {figures['handler']['p99_ms']:.2f} ms)",
                "target": f"<= {TARGET_RATIO} x bare SQL",
                "met": figures["x_bare_sql_median"] <= TARGET_RATIO,
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
