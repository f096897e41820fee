"""PostgreSQL stopped in the middle of a stream of registrations and transitions, then started again.

What must hold: every request during the outage is a 503 with ``Retry-After``; every
request that got a 2xx is in the database; a request that failed left nothing behind
(checked the moment the server is back, before any retry); and the same warm
container (``app.runtime.database``, never reset by the test) serves again once the server
is back.  Each failed step is retried later, so at the end every registration's
history is exactly the sequence of steps that succeeded.
"""

import random
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from chalice.test import Client

import app as app_module
from chalicelib.migrate import run
from chalicelib.workflow import Action
from tests.conftest import MIGRATIONS, Databases
from tests.faults.own_postgres import OwnPostgres
from tests.integration.api import BODY_BY_ACTION, JSON, OTP_KEY, SECRET, post, token
from tests.support.runtime import new_container

# The staff steps from a new registration to approved, and who takes each.
STEPS: list[tuple[Action, str]] = [
    (Action.VERIFY, "cs"),
    (Action.SCHEDULE_SURVEY, "cs"),
    (Action.COMPLETE_SURVEY, "surveyor"),
    (Action.APPROVE, "approver"),
]


@dataclass
class Applicant:
    """One registration the stream drives: its body, key, id once created, and the steps done."""

    body: dict[str, Any]
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    id: str | None = None
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: bool = False

    @property
    def finished(self) -> bool:
        return self.cancelled or len(self.done) == len(STEPS)


@pytest.fixture
def api(own_postgres: OwnPostgres, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Client, str]]:
    """The app on a migrated database of the test's own server: (client, database URL)."""
    url = Databases(own_postgres.url).create()
    report = run("apply", url, migrations_dir=MIGRATIONS)
    assert report["ok"], report
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DB_CONNECT_TIMEOUT_S", "2")
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    monkeypatch.setenv("OTP_HASH_KEY", OTP_KEY)
    for name in ("WHATSAPP_API_URL", "WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    new_container(monkeypatch)
    with Client(app_module.app, stage_name="local") as client:
        yield client, url
    app_module.runtime.database.reset()


class Stream:
    """Registrations and staff transitions in a seeded random order, every answer recorded."""

    def __init__(self, client: Client, package_id: str, seed: int) -> None:
        self.client = client
        self.package_id = package_id
        self.rng = random.Random(seed)  # noqa: S311 (a reproducible order, nothing secret)
        self.applicants: list[Applicant] = []
        self.statuses: Counter[int] = Counter()
        self.answers: list[tuple[str, int, dict[str, str]]] = []

    def step(self) -> int:
        """One request: a new (or retried) registration, a next step, or now and then a cancel."""
        waiting = [a for a in self.applicants if a.id is None]
        live = [a for a in self.applicants if a.id is not None and not a.finished]
        if waiting and self.rng.random() < 0.5:
            return self._register(self.rng.choice(waiting))
        if not live or (len(live) < 6 and self.rng.random() < 0.3):
            return self._register(self._new_applicant())
        applicant = self.rng.choice(live)
        if self.rng.random() < 0.05:
            return self._act(applicant, Action.CANCEL, "cs")
        action, role = STEPS[len(applicant.done)]
        return self._act(applicant, action, role)

    def _new_applicant(self) -> Applicant:
        unique = uuid.uuid4().int % 10**8
        body = {
            "full_name": "Rina Wulandari",
            "email": f"rina{unique}@example.co.id",
            "phone": f"0813{unique:08d}",
            "address": "Jl. Asia Afrika No. 8",
            "city": "Bandung",
            "package_id": self.package_id,
        }
        applicant = Applicant(body)
        self.applicants.append(applicant)
        return applicant

    def _register(self, applicant: Applicant) -> int:
        import json

        response = self.client.http.post(
            "/registrations", body=json.dumps(applicant.body), headers={**JSON, "Idempotency-Key": applicant.key}
        )
        if response.status_code == 201:
            applicant.id = response.json_body["id"]
        return self._record("register", response)

    def _act(self, applicant: Applicant, action: Action, role: str) -> int:
        path = f"/registrations/{applicant.id}/{action}"
        response = post(self.client, path, BODY_BY_ACTION[action], token(role))
        if response.status_code == 200:
            applicant.done.append(action.value)
            applicant.cancelled = action is Action.CANCEL
        else:
            applicant.failed.append(action.value)
        return self._record(str(action), response)

    def _record(self, what: str, response: Any) -> int:
        self.statuses[response.status_code] += 1
        self.answers.append((what, response.status_code, dict(response.headers)))
        return int(response.status_code)


def histories(url: str) -> dict[str, list[str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT registration_id::text, action FROM registration_status_history ORDER BY id")
        result: dict[str, list[str]] = {}
        for registration_id, action in rows:
            result.setdefault(registration_id, []).append(action)
    return result


def registered_emails(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute("SELECT email FROM customer_registrations")}


def assert_consistent(stream: Stream, url: str) -> None:
    """Each created registration holds exactly the steps that got a 200; nothing else exists."""
    found = histories(url)
    created = {a.id: a for a in stream.applicants if a.id is not None}
    assert set(found) == set(created), "a registration exists exactly when its POST got a 201"
    for registration_id, applicant in created.items():
        assert found[registration_id] == ["register", *applicant.done], applicant
    uncreated = {a.body["email"] for a in stream.applicants if a.id is None}
    assert not uncreated & registered_emails(url), "a failed registration left a row behind"


def test_requests_during_an_outage_are_503_and_leave_nothing(
    api: tuple[Client, str], own_postgres: OwnPostgres
) -> None:
    client, url = api
    package = post(
        client, "/packages", {"name": "Rumah 20", "speed_mbps": 20, "monthly_price_idr": 200_000}, token("admin")
    )
    stream = Stream(client, package.json_body["id"], seed=11)
    container = app_module.runtime.database

    before = [stream.step() for _ in range(40)]
    assert all(status < 500 for status in before)

    own_postgres.stop()
    during = [stream.step() for _ in range(15)]
    outage = stream.answers[-15:]
    assert during == [503] * 15, "every request while the database is down"
    assert all(headers.get("Retry-After") == "5" for _, _, headers in outage)

    own_postgres.start()
    assert_consistent(stream, url)  # before any retry: the 503s wrote nothing
    after = [stream.step() for _ in range(60)]
    assert all(status < 500 for status in after), stream.answers[-60:]
    assert after.count(200) + after.count(201) > 0, "the same container serves again"
    assert app_module.runtime.database is container
    # Everything left unfinished is finished now; each 503 was retried.
    for _ in range(200):
        if all(a.id is not None and a.finished for a in stream.applicants):
            break
        assert stream.step() < 500
    assert_consistent(stream, url)
    assert stream.statuses[503] == 15
    assert set(stream.statuses) <= {200, 201, 503}, stream.statuses
    print(f"outage between requests: {len(stream.answers)} requests, by status {dict(stream.statuses)}")


def test_an_outage_while_requests_are_in_flight_loses_and_doubles_nothing(
    api: tuple[Client, str], own_postgres: OwnPostgres
) -> None:
    """The server stopped by another thread at whatever moment a request is at.

    A request in flight when the server dies may have committed and still get a 503
    (the answer was lost with the connection), so here the check is that retrying
    each failed step once the server is back makes every step happen exactly once:
    the registration by its ``Idempotency-Key``, a transition by its 409 naming the
    status it already reached.
    """
    client, url = api
    package = post(
        client, "/packages", {"name": "Rumah 30", "speed_mbps": 30, "monthly_price_idr": 300_000}, token("admin")
    )
    stream = Stream(client, package.json_body["id"], seed=23)
    go, stopped = threading.Event(), threading.Event()

    def outage() -> None:
        go.wait(timeout=60)
        own_postgres.stop()
        stopped.set()

    killer = threading.Thread(target=outage)
    killer.start()
    for index in range(300):
        if index == 30:
            go.set()
        stream.step()
        if stopped.is_set() and stream.statuses[503] >= 5:
            break
    killer.join(timeout=60)
    assert stopped.is_set()
    assert stream.statuses[503] >= 5
    own_postgres.start()
    for _ in range(400):
        if all(a.id is not None and a.finished for a in stream.applicants):
            break
        stream.step()
    assert all(a.id is not None and a.finished for a in stream.applicants)
    assert stream.statuses[500] == 0, stream.statuses
    assert set(stream.statuses) <= {200, 201, 409, 503}, stream.statuses
    # A transition that committed as the server died is retried and answered 409 (already there):
    # that is the only way a 409 appears in this stream.
    found = histories(url)
    for applicant in stream.applicants:
        assert applicant.id is not None
        actions = found[applicant.id]
        assert actions[0] == "register"
        assert len(actions) == len(set(actions)), f"a step happened twice: {actions}"
        assert set(actions[1:]) <= {*applicant.done, *applicant.failed}
    assert_registrations_once(stream, url)
    print(f"in-flight outage: {len(stream.answers)} requests, by status {dict(stream.statuses)}")


def assert_registrations_once(stream: Stream, url: str) -> None:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT email, count(*) FROM customer_registrations GROUP BY email").fetchall()
    assert {email for email, _ in rows} == {a.body["email"] for a in stream.applicants}
    assert all(count == 1 for _, count in rows)
