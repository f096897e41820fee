"""Entry points: API Gateway routes, the SQS worker, and the ``migrate`` Lambda.

Each handler translates its event and calls one function of chalicelib; heavy
modules (psycopg, boto3, pydantic models, JWT) are imported at first use so that
cold start stays light.  Errors become JSON in one place, ``chalicelib.http``.
"""

import functools
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from chalice.app import Chalice, Response

from chalicelib import emf, logs
from chalicelib.runtime import Database

logs.configure()
app = Chalice(app_name="registration-backend", configure_logs=False)
database = Database()
request_log = logging.getLogger("registration.request")


def api(path: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``app.route`` whose errors are translated by ``chalicelib.http``."""

    def register(view: Callable[..., Any]) -> Any:
        @functools.wraps(view)
        def translated(**kwargs: Any) -> Any:
            try:
                return view(**kwargs)
            except Exception as error:
                from chalicelib.http import translate

                status, body, headers = translate(error)
                return Response(body=body, status_code=status, headers=dict(headers))

        return app.route(path, **options)(translated)

    return register


@app.middleware("http")
def log_request(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """One JSON line per request: request id, route, status, time taken (no query, no body).

    The request id is the ``correlation_id`` of every log line the request causes (and
    of the worker's and the sender's, through the queue and the outbox), and the
    request's metrics are one EMF line.
    """
    started = time.perf_counter()
    context = event.context or {}
    request_id = context.get("requestId") or getattr(event.lambda_context, "aws_request_id", None)
    with logs.correlated(request_id), emf.invocation("api_handler", correlation_id=request_id):
        response = get_response(event)
        request_log.info(
            "request",
            extra={
                "request_id": request_id,
                "route": f"{event.method} {context.get('resourcePath', '')}",
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
    return response


@app.middleware("http")
def pinned_error_bodies(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """Chalice's own errors (405, 415, 500) in the pinned ``{"error": {...}}`` shape too."""
    response = get_response(event)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and set(body) == {"Code", "Message"}:
        from chalicelib.http import error_body

        response.body = error_body(str(body["Code"]), str(body["Message"]))
    return response


@api("/openapi.json", methods=["GET"])
def openapi_document() -> Any:
    from chalicelib.openapi import document

    return document()


@api("/packages", methods=["GET"])
def list_packages() -> Any:
    from chalicelib import registrations

    return database.run(registrations.list_packages)


@api("/packages", methods=["POST"])
def create_package() -> Response:
    from chalicelib import registrations
    from chalicelib.models import PackageIn

    staff, body = _staff(), _body(PackageIn)
    return Response(database.run(lambda conn: registrations.create_package(conn, staff, body)), status_code=201)


@api("/registrations", methods=["POST"])
def create_registration() -> Response:
    from chalicelib import registrations
    from chalicelib.config import settings
    from chalicelib.models import RegistrationIn

    body, key = _body(RegistrationIn), _request().headers.get("idempotency-key")
    done = database.run(lambda conn: registrations.register(conn, body, settings().otp_hash_key, key))
    _notify(done.outbox_ids)
    return Response(done.body, status_code=done.status)


@api("/registrations", methods=["GET"])
def list_registrations() -> Any:
    from chalicelib import registrations
    from chalicelib.models import ListQuery

    staff = _staff()
    query = ListQuery.model_validate(dict(_request().query_params or {}))
    return database.run(lambda conn: registrations.list_registrations(conn, staff, query))


@api("/registrations/{registration_id}", methods=["GET"])
def get_registration(registration_id: str) -> Any:
    from chalicelib import registrations

    _staff()
    return database.run(lambda conn: registrations.get_registration(conn, registration_id))


@api("/registrations/{registration_id}/resend-code", methods=["POST"])
def resend_code(registration_id: str) -> Any:
    from chalicelib import verification
    from chalicelib.config import settings

    body, outbox_ids = database.run(
        lambda conn: verification.resend_code(conn, registration_id, settings().otp_hash_key)
    )
    _notify(outbox_ids)
    return body


@api("/registrations/{registration_id}/{action}", methods=["POST"])
def act_on_registration(registration_id: str, action: str) -> Any:
    from chalicelib import registrations, verification
    from chalicelib.config import settings
    from chalicelib.errors import NotFoundError
    from chalicelib.workflow import Action

    if action == Action.CREATE_CUSTOMER:
        return _request_customer(registration_id)
    known = {a.value: a for a in registrations.BODY_BY_ACTION}
    if action not in known:
        raise NotFoundError(f"no action {action!r}", {"actions": sorted(known)})
    model = registrations.BODY_BY_ACTION[known[action]]
    body = None if model is None else _body(model)
    staff, key = _staff() if _request().headers.get("authorization") else None, settings().otp_hash_key
    return database.run(lambda conn: verification.perform(conn, registration_id, known[action], staff, body, key))


def _request_customer(registration_id: str) -> Response:
    from chalicelib import customers, sqs
    from chalicelib.config import settings

    staff, queue_url = _staff(), settings().customer_queue_url
    answer = database.run(lambda conn: customers.request_customer(conn, registration_id, staff, sqs.client, queue_url))
    return Response(answer.body, status_code=202 if answer.queued else 200)


@app.on_sqs_message(queue="create-customer", batch_size=10, name="customer_worker")
def customer_worker(event: Any) -> dict[str, Any]:
    """Create each record's customer; ``{"batchItemFailures": [...]}`` names the records to retry."""
    from chalicelib import customers

    with emf.invocation("customer_worker"):
        return customers.create_customers(database, event.to_dict()["Records"], notify=_notify)


@app.lambda_function(name="migrate")
def migrate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``{"action": "plan" | "apply" | "verify"}`` -> the JSON report; raises unless ok."""
    from chalicelib.migrate import raise_unless_ok, run

    return raise_unless_ok(run(str(event.get("action", ""))))


@app.schedule("rate(1 minute)", name="send_notifications")
def send_notifications(event: Any) -> dict[str, Any]:
    """Send what is due in the outbox: retries, and whatever ``_notify`` could not send."""
    from chalicelib import delivery

    with emf.invocation("send_notifications"):
        return delivery.send_due(database)


@app.schedule("rate(1 day)", name="purge_idempotency_keys")
def purge_idempotency_keys(event: Any) -> dict[str, int]:
    """Forget Idempotency-Keys older than a day, so that the table does not grow without end."""
    from chalicelib import registrations

    return {"purged": database.run(registrations.purge_idempotency_keys)}


def _notify(outbox_ids: list[uuid.UUID]) -> None:
    from chalicelib import delivery

    delivery.send_committed(database, outbox_ids)


def _staff() -> Any:
    from chalicelib.auth import authenticate
    from chalicelib.config import settings

    return authenticate(_request().headers, settings())


def _body(model: Any) -> Any:
    from chalicelib.http import parse_size

    raw = _request().raw_body
    parse_size(raw if isinstance(raw, bytes) else None)
    return model.model_validate_json(raw or b"")


def _request() -> Any:
    request = app.current_request
    assert request is not None, "only called while handling a request"
    return request
