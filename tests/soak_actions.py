"""One soak process: the app as a warm container, and the random actions it takes (see ``tests/soak.py``)."""

import json
import os
import random
import time
import uuid
from collections import Counter
from types import TracebackType
from typing import Any

import jwt
import psycopg

ROLES = ["cs", "surveyor", "approver", "admin"]


class Container:
    """The app in this process, with in-process moto SQS and its own fake WhatsApp on loopback."""

    def __init__(self, url: str, people: list[dict[str, Any]], seed: int, secret: str, otp_key: str) -> None:
        self.url, self.people, self.secret, self.otp_key = url, people, secret, otp_key
        self.rng = random.Random(seed)  # noqa: S311 (load generation)
        self.outcomes: Counter[str] = Counter()
        self.message_ids: list[dict[str, Any]] = []

    def __enter__(self) -> "Container":
        import boto3
        import moto
        from chalice.test import Client

        from devstack.whatsapp import FakeWhatsApp

        self.whatsapp = FakeWhatsApp().start()
        self._mock = moto.mock_aws()
        env = {
            "DATABASE_URL": self.url,
            "AUTH_JWT_SECRET": self.secret,
            "OTP_HASH_KEY": self.otp_key,
            "WHATSAPP_API_URL": self.whatsapp.api_url,
            "WHATSAPP_PHONE_NUMBER_ID": self.whatsapp.phone_number_id,
            "WHATSAPP_TOKEN": str(self.whatsapp.token),
            "AWS_DEFAULT_REGION": "ap-southeast-3",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        os.environ.update(env)
        for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"):
            os.environ.pop(name, None)
        self._mock.start()
        self.queue_url = boto3.client("sqs").create_queue(QueueName="create-customer")["QueueUrl"]
        os.environ["CUSTOMER_QUEUE_URL"] = self.queue_url
        import app

        self.app = app
        self.client = Client(app.app, stage_name="local")
        self.db = psycopg.connect(self.url, autocommit=True)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.db.close()
        self.app.runtime.database.reset()
        self._mock.stop()
        self.whatsapp.stop()

    def random_action(self) -> None:
        action = self.rng.choices(
            [self.register, self.act, self.guess_code, self.right_code, self.resend, self.read, self.deliver,
             self.send_due],
            weights=[20, 45, 6, 6, 3, 6, 10, 4],
        )[0]  # fmt: skip
        action()

    # -- the HTTP API ------------------------------------------------------------------------

    def register(self) -> None:
        person = dict(self.rng.choice(self.people))
        headers = {"Content-Type": "application/json"}
        if self.rng.random() < 0.3:  # a retried request: the same key, the same body
            headers["Idempotency-Key"] = f"{person['email']}:{self.rng.randrange(3)}"
        if self.rng.random() < 0.1:
            person["phone"] = "12345"  # invalid input
        response = self.client.http.post("/registrations", body=json.dumps(person), headers=headers)
        self._count("register", response.status_code)

    def act(self) -> None:
        from chalicelib.statuses import RegistrationStatus
        from chalicelib.workflow import TRANSITIONS, Action, allowed_actions

        found = self._random_registration()
        if found is None:
            return
        registration_id, status = found
        possible = allowed_actions(RegistrationStatus(status))
        if possible and self.rng.random() < 0.7:
            action = self.rng.choice([a for a in possible if a not in (Action.REJECT, Action.CANCEL)] or possible)
        else:
            action = self.rng.choice(list(Action))
        transition = next(t for t in TRANSITIONS if t.action is action)
        roles = ["approver", "admin"] if action is Action.CREATE_CUSTOMER else sorted(transition.roles)
        role = self.rng.choice(roles) if self.rng.random() < 0.8 else self.rng.choice([*ROLES, None])
        body = _body(action, self.rng)
        response = self.client.http.post(
            f"/registrations/{registration_id}/{action}",
            body=json.dumps(body) if body is not None else b"",
            headers={"Content-Type": "application/json", **self._token(role)},
        )
        self._count(f"{action}", response.status_code)
        if action is Action.CREATE_CUSTOMER and response.status_code == 202 and self.rng.random() < 0.8:
            self._deliver_queued()

    def guess_code(self) -> None:
        found = self._random_registration()
        if found is not None:
            code = f"{self.rng.randrange(10**6):06d}"
            response = self.client.http.post(
                f"/registrations/{found[0]}/verify",
                body=json.dumps({"code": code}),
                headers={"Content-Type": "application/json"},
            )
            self._count("verify (guess)", response.status_code)

    def right_code(self) -> None:
        """The code this container's WhatsApp delivered last, for the registration it went to."""
        otps = [m for m in self.whatsapp.delivered if m.body["template"]["name"] == "registration_otp"]
        if not otps:
            return
        message = self.rng.choice(otps[-20:])
        code = message.body["template"]["components"][0]["parameters"][0]["text"]
        row = self.db.execute(
            "SELECT id FROM customer_registrations WHERE phone = %s ORDER BY created_at DESC LIMIT 1",
            ("+" + str(message.to),),
        ).fetchone()
        if row is not None:
            response = self.client.http.post(
                f"/registrations/{row[0]}/verify",
                body=json.dumps({"code": code}),
                headers={"Content-Type": "application/json"},
            )
            self._count("verify (code)", response.status_code)

    def resend(self) -> None:
        found = self._random_registration()
        if found is not None:
            response = self.client.http.post(f"/registrations/{found[0]}/resend-code")
            self._count("resend-code", response.status_code)

    def read(self) -> None:
        found = self._random_registration()
        if found is not None:
            role = self.rng.choice([*ROLES, None])
            response = self.client.http.get(f"/registrations/{found[0]}", headers=self._token(role))
            self._count("get", response.status_code)

    # -- the SQS worker and the scheduled sender ------------------------------------------------

    def deliver(self) -> None:
        """A create-customer record for a random approved (or already created) registration, maybe twice."""
        row = self.db.execute(
            "SELECT id FROM customer_registrations WHERE status IN ('approved', 'customer_created') "
            "ORDER BY random() LIMIT 1"
        ).fetchone()
        if row is None:
            return
        from tests import sqs_events

        record = sqs_events.record(sqs_events.create_customer_body(str(row[0])))
        if self.message_ids and self.rng.random() < 0.3:
            record = self.rng.choice(self.message_ids)  # a redelivery of an earlier message
        self.message_ids = [*self.message_ids[-50:], record]
        self._run_worker([record] * self.rng.choice([1, 1, 2]))

    def _deliver_queued(self) -> None:
        import boto3

        from tests import sqs_events

        messages = (
            boto3.client("sqs")
            .receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
            .get("Messages", [])
        )
        records = [sqs_events.from_received(m) for m in messages]
        if records:
            self.message_ids = [*self.message_ids[-50:], *records]
            self._run_worker(records)

    def _run_worker(self, records: list[dict[str, Any]]) -> None:
        from chalicelib.customers import service as customers

        result = customers.create_customers(self.app.runtime.database, records, notify=self.app._notify)
        failed = len(result["batchItemFailures"])
        self.outcomes["sqs record acknowledged"] += len(records) - failed
        self.outcomes["sqs record failed"] += failed

    def send_due(self) -> None:
        from chalicelib.notifications import sender as notifications
        from chalicelib.notifications.whatsapp import WhatsAppClient

        client = WhatsAppClient(self.whatsapp.api_url, self.whatsapp.phone_number_id, str(self.whatsapp.token))
        counts = self.app.runtime.database.run(lambda conn: notifications.send_due(conn, client, limit=20))
        self.outcomes["send_notifications run"] += 1
        self.outcomes["send_notifications sent"] += counts["sent"]

    # -- helpers -----------------------------------------------------------------------------

    def _random_registration(self) -> tuple[str, str] | None:
        row = self.db.execute("SELECT id, status FROM customer_registrations ORDER BY random() LIMIT 1").fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def _token(self, role: str | None) -> dict[str, str]:
        if role is None:
            return {}
        claims = {"sub": f"soak-{uuid.uuid4().hex[:6]}", "cognito:groups": [role], "exp": int(time.time()) + 600}
        return {"Authorization": "Bearer " + jwt.encode(claims, self.secret, algorithm="HS256")}

    def _count(self, what: str, status: int) -> None:
        self.outcomes[f"{what} {status}"] += 1


def _body(action: Any, rng: random.Random) -> dict[str, Any] | None:
    from tests.integration.api import BODY_BY_ACTION

    if action == "create-customer":
        return None
    body = BODY_BY_ACTION[action]
    if rng.random() < 0.05:
        return {"unexpected": "field"}
    if action == "complete-survey":
        return {"feasible": rng.random() < 0.85, "notes": "Tiang dekat rumah"}
    return body
