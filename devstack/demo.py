"""`make demo`: one registration from sign-up to ``customer_created``, over HTTP, against `make run`.

Reads the one-time code from the WhatsApp sink (``GET /_messages``), walks every
step with the staff token of its role, asks for the customer (202), polls until
the worker created it, and shows the WhatsApp message that announced it.  Exits
non-zero at the first step that does not answer as expected.

    python -m devstack.demo [--api URL] [--whatsapp URL] [--timeout S]
"""

import argparse
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from chalicelib.platform.logs import mask
from devstack.stack import HOST, Ports, local_secrets, staff_token


class DemoError(Exception):
    """A step answered something else than expected."""


def main(argv: list[str] | None = None) -> int:
    ports = Ports.from_env(os.environ)
    parser = argparse.ArgumentParser(prog="python -m devstack.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--api", default=f"http://{HOST}:{ports.api}")
    parser.add_argument("--whatsapp", default=f"http://{HOST}:{ports.whatsapp}")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the customer")
    args = parser.parse_args(argv)
    secret = os.environ.get("AUTH_JWT_SECRET") or local_secrets()["auth_jwt_secret"]
    try:
        walk(args.api, args.whatsapp, lambda role: staff_token(secret, role, days=1), args.timeout)
    except (DemoError, OSError) as error:
        print(f"make demo: FAILED: {error}", file=sys.stderr)
        return 1
    return 0


def walk(api: str, sink: str, token: Callable[[str], str], timeout_s: float) -> dict[str, Any]:
    """Every step, printed as it goes; the registration as ``customer_created``."""
    packages = call("GET", f"{api}/packages", expect=200)
    if not packages:
        raise DemoError("GET /packages is empty: make run seeds two; is this the local stack?")
    package = packages[0]
    step(f"package          {package['name']} ({package['id']})")
    unique = secrets.randbelow(10**8)
    body = {
        "full_name": "Siti Nurhaliza",
        "email": f"siti.demo{unique}@example.co.id",
        "phone": f"0812{unique:08d}",
        "address": "Jl. Merdeka No. 1",
        "city": "Bandung",
        "package_id": package["id"],
    }
    registration = call("POST", f"{api}/registrations", body, expect=201)
    path = f"{api}/registrations/{registration['id']}"
    step(f"registered       {registration['id']}  {registration['status']}  {registration['phone']}")
    code = one_time_code(sink, registration["phone"], timeout_s=10)
    step(f"OTP from sink    {code}")
    steps: list[tuple[str, Any, str | None]] = [
        ("verify", {"code": code}, None),
        ("schedule-survey", {"scheduled_at": survey_time(), "surveyor": "local-surveyor"}, "cs"),
        ("complete-survey", {"feasible": True, "notes": "Tiang dekat rumah"}, "surveyor"),
        ("approve", None, "approver"),
    ]
    for action, payload, role in steps:
        answer = call("POST", f"{path}/{action}", payload, token=token(role) if role else None, expect=200)
        step(f"{action:<16} {answer['status']}   ({role or 'the registrant, with the code'})")
    queued = call("POST", f"{path}/create-customer", None, token=token("approver"), expect=202)
    step(f"create-customer  202 queued   {json.dumps(queued)}")
    done = wait_for_customer(path, token("cs"), timeout_s)
    customer, ticket = done.get("customer") or {}, done.get("ticket") or {}
    step(f"customer         {customer.get('customer_number')}   ticket {ticket.get('ticket_number', ticket.get('id'))}")
    message = wait_for_message(sink, registration["phone"], "customer_created", timeout_s=30)
    step(f"WhatsApp         {json.dumps(message, ensure_ascii=False)}")
    print("make demo: OK, sign-up to customer_created", flush=True)
    return done


def survey_time(days_ahead: int = 2) -> str:
    """10:00 in Bandung (UTC+7), ``days_ahead`` days from now: a survey is scheduled in the future."""
    bandung = timezone(timedelta(hours=7))
    day = datetime.now(bandung) + timedelta(days=days_ahead)
    return day.replace(hour=10, minute=0, second=0, microsecond=0).isoformat()


def wait_for_customer(path: str, bearer: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    status = None
    while time.monotonic() < deadline:
        registration = call("GET", path, token=bearer, expect=200)
        if registration["status"] != status:
            status = registration["status"]
            step(f"status           {status}")
        if status == "customer_created":
            return dict(registration)
        if status != "approved":
            raise DemoError(f"the registration went to {status}, not customer_created")
        time.sleep(0.5)
    raise DemoError(f"no customer after {timeout_s:.0f} s: is the worker running (make run prints [worker] lines)?")


def one_time_code(sink: str, phone: str, timeout_s: float) -> str:
    message = wait_for_message(sink, phone, "registration_otp", timeout_s)
    return str(message["components"][0]["parameters"][0]["text"])


def wait_for_message(sink: str, phone: str, template: str, timeout_s: float) -> dict[str, Any]:
    """The newest message with ``template`` the sink delivered to ``phone`` (E.164)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        messages = call("GET", f"{sink}/_messages", expect=200)["messages"]
        found = [m for m in messages if m["to"] == phone.removeprefix("+") and m["template"] == template]
        if found:
            return dict(found[-1])
        time.sleep(0.5)
    raise DemoError(f"the WhatsApp sink got no {template} message for {phone} within {timeout_s:.0f} s")


def call(method: str, url: str, body: Any = None, *, token: str | None = None, expect: int) -> Any:
    """One JSON request; the decoded answer, or ``DemoError`` naming the status and body."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 (loopback URLs)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    if status != expect:
        raise DemoError(f"{method} {url}: {status}, expected {expect}: {raw.decode(errors='replace')[:500]}")
    return json.loads(raw) if raw else None


def step(text: str) -> None:
    """One line of the walk, phone numbers and e-mail addresses masked as in the logs."""
    print(f"  {mask(text)}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
