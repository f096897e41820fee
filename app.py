"""Entry points: API Gateway routes, the SQS worker, the scheduled functions and the ``migrate`` Lambda.

Each handler translates its event and calls one function of chalicelib; heavy
modules (psycopg, boto3, pydantic models, JWT) are imported at first use so that
cold start stays light.  Errors become JSON in one place, ``chalicelib.web.responses``.
What the container builds once lives on ``runtime`` (``chalicelib.platform.runtime``).
"""

import contextvars
import functools
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from chalice.app import Chalice, Response

from chalicelib.platform import emf, logs
from chalicelib.platform.runtime import Runtime

logs.configure()
app = Chalice(app_name="registration-backend", configure_logs=False)
runtime = Runtime()
request_log = logging.getLogger("registration.request")
# The access record of the request in hand (who read which registrations), for its request line.
_read: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("personal_data_read", default=None)


def api(path: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``app.route`` whose errors are translated by ``chalicelib.web.responses``."""

    def register(view: Callable[..., Any]) -> Any:
        @functools.wraps(view)
        def translated(**kwargs: Any) -> Any:
            try:
                return view(**kwargs)
            except Exception as error:
                from chalicelib.web.responses import translate

                status, body, headers = translate(error)
                return Response(body=body, status_code=status, headers=dict(headers))

        return app.route(path, **options)(translated)

    return register


# What a cache may keep: the public catalogue and the API description.  Everything
# else names a person (the staff views above all) and must not be stored on the way.
_CACHEABLE = frozenset({("GET", "/packages"), ("GET", "/openapi.json")})


@app.middleware("http")
def log_request(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """One JSON line per request (request id, route, status, time taken, and who read which
    registrations when it answered with personal data; no query, no body), Chalice's own
    errors (405, 415, 500) in the pinned ``{"error": {...}}`` shape too, and
    ``Cache-Control: no-store`` on every response that is not public and cacheable.

    The request id is the ``correlation_id`` of every log line the request causes (and
    of the worker's and the sender's, through the queue and the outbox), and the
    request's metrics are one EMF line.  One middleware rather than several: each costs
    every request a layer of Chalice's wrapping.
    """
    started = time.perf_counter()
    context = event.context or {}
    request_id = context.get("requestId") or getattr(event.lambda_context, "aws_request_id", None)
    line: dict[str, Any] = {"request_id": request_id, "route": f"{event.method} {context.get('resourcePath', '')}"}
    read = _read.set(line)
    try:
        with logs.correlated(request_id), emf.invocation("api_handler", correlation_id=request_id):
            response = get_response(event)
            body = response.body
            if response.status_code >= 400 and isinstance(body, dict) and set(body) == {"Code", "Message"}:
                from chalicelib.web.responses import chalice_error_body

                allowed = str(response.headers.get("Allow", ""))
                response.body = chalice_error_body(response.status_code, event.method, allowed)
            if (event.method, context.get("resourcePath", "")) not in _CACHEABLE:
                response.headers.setdefault("Cache-Control", "no-store")
            line["status"] = response.status_code
            line["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
            request_log.info("request", extra=line)
    finally:
        _read.reset(read)
    return response


@api("/openapi.json", methods=["GET"])
def openapi_document() -> Any:
    from chalicelib.web.openapi import document

    return document()


@api("/docs", methods=["GET"])
def docs_page() -> Response:
    from chalicelib.web import docs as apidocs

    headers: dict[str, str | list[str]] = {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": apidocs.PAGE_CACHE,
        **apidocs.SECURITY_HEADERS,
    }
    return Response(apidocs.page(), status_code=200, headers=headers)


@api("/docs/{name}", methods=["GET"])
def docs_asset(name: str) -> Response:
    from chalicelib.web import docs as apidocs

    found = apidocs.asset(name)
    headers: dict[str, str | list[str]] = {
        "Content-Type": found.content_type,
        "Cache-Control": apidocs.LONG_CACHE,
        **apidocs.SECURITY_HEADERS,
    }
    return Response(found.body, status_code=200, headers=headers)


@api("/packages", methods=["GET"])
def list_packages() -> Any:
    from chalicelib.registrations import service

    return runtime.database.run(service.list_packages)


@api("/packages", methods=["POST"])
def create_package() -> Response:
    from chalicelib.registrations import service
    from chalicelib.registrations.models import PackageIn

    staff = _staff(service.PACKAGE_CREATORS)
    body = _body(PackageIn)
    return Response(runtime.database.run(lambda conn: service.create_package(conn, staff, body)), status_code=201)


@api("/registrations", methods=["POST"])
def create_registration() -> Response:
    from chalicelib.registrations import service
    from chalicelib.registrations.models import RegistrationIn

    body, key, budget = _body(RegistrationIn), _request().headers.get("idempotency-key"), _otp_budget()
    settings = runtime.settings
    done = runtime.database.run(
        lambda conn: service.register(
            conn, body, settings.otp_hash_key, key, budget=budget, stale_after=settings.unverified_expire_after
        )
    )
    _notify(done.outbox_ids)
    if done.refusal is not None:
        raise done.refusal
    return Response(done.body, status_code=done.status)


@api("/registrations", methods=["GET"])
def list_registrations() -> Response:
    from chalicelib.registrations import service
    from chalicelib.registrations.models import ListQuery
    from chalicelib.web.requests import parse_query

    staff = _staff(service.READERS)
    query = parse_query(_request().query_params, ListQuery)
    page = runtime.database.run(lambda conn: service.list_registrations(conn, staff, query))
    _record_access(staff, page.ids)
    return Response(page.body, headers={"Content-Type": "application/json"})


@api("/registrations/{registration_id}", methods=["GET"])
def get_registration(registration_id: str) -> Any:
    from chalicelib.registrations import service

    staff = _staff(service.READERS)
    found = runtime.database.run(lambda conn: service.get_registration(conn, staff, registration_id))
    _record_access(staff, [found["id"]])
    return found


@api("/registrations/{registration_id}/personal-data", methods=["GET"])
def export_personal_data(registration_id: str) -> Any:
    from chalicelib.privacy import service

    staff = _staff(service.PRIVACY_OFFICERS)
    document = runtime.database.run(lambda conn: service.export(conn, staff, registration_id))
    others = [o["registration"]["id"] for o in document["other_registrations"]]
    _record_access(staff, [document["registration"]["id"], *others])
    return document


@api("/registrations/{registration_id}/personal-data", methods=["DELETE"])
def erase_personal_data(registration_id: str) -> Any:
    from chalicelib.privacy import service
    from chalicelib.privacy.models import ErasureIn

    staff = _staff(service.PRIVACY_OFFICERS)
    body = _body(ErasureIn)
    return runtime.database.run(lambda conn: service.erase(conn, staff, registration_id, body.reason))


@api("/registrations/{registration_id}/resend-code", methods=["POST"])
def resend_code(registration_id: str) -> Any:
    from chalicelib.registrations import verification

    key, budget = runtime.settings.otp_hash_key, _otp_budget()
    body, outbox_ids = runtime.database.run(lambda conn: verification.resend_code(conn, registration_id, key, budget))
    _notify(outbox_ids)
    return body


@api("/registrations/{registration_id}/create-customer", methods=["POST"])
def request_customer(registration_id: str) -> Response:
    from chalicelib.customers import service

    staff, queue_url = _staff(), runtime.settings.customer_queue_url
    answer = runtime.database.run(
        lambda conn: service.request_customer(conn, registration_id, staff, runtime.sqs, queue_url)
    )
    if not answer.queued:  # the customer that exists: their name, phone and address
        _record_access(staff, [registration_id])
    return Response(answer.body, status_code=202 if answer.queued else 200)


@api("/registrations/{registration_id}/{action}", methods=["POST"])
def act_on_registration(registration_id: str, action: str) -> Any:
    from chalicelib.registrations import actions
    from chalicelib.web.auth import authenticate_if_sent

    step, model = actions.parse_action(action)
    staff = authenticate_if_sent(_request().headers, runtime)
    actions.authorize(step, staff)  # 401/403 before the body is read
    if model is None:
        body = None
    elif not _request().raw_body and not actions.body_required(step, staff):
        body = model()  # staff verify without a body, like approve
    else:
        body = _body(model)
    key = runtime.settings.otp_hash_key
    moved = runtime.database.run(lambda conn: actions.perform(conn, registration_id, step, staff, body, key))
    if staff is not None:  # the registration it answers with names the person
        _record_access(staff, [moved["id"]])
    return moved


@app.on_sqs_message(queue="create-customer", batch_size=10, name="customer_worker")
def customer_worker(event: Any) -> dict[str, Any]:
    """Create each record's customer; ``{"batchItemFailures": [...]}`` names the records to retry."""
    from chalicelib.customers import service

    with emf.invocation("customer_worker"):
        return service.create_customers(runtime.database, event.to_dict()["Records"], notify=_notify)


@app.lambda_function(name="migrate")
def migrate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``{"action": "plan" | "apply" | "verify"}`` -> the JSON report; raises unless ok.

    A CloudFormation custom-resource request (``RequestType`` and ``ResponseURL``)
    is the schema gate instead: answered by one PUT, never raised.
    """
    if "RequestType" in event and "ResponseURL" in event:
        from chalicelib.migrate import custom_resource

        return custom_resource.handle(event, context)
    from chalicelib.migrate import raise_unless_ok, run

    return raise_unless_ok(run(str(event.get("action", ""))))


@app.schedule("rate(1 minute)", name="send_notifications")
def send_notifications(event: Any) -> dict[str, Any]:
    """Send what is due in the outbox: retries, and whatever ``_notify`` could not send."""
    from chalicelib.notifications import service

    with emf.invocation("send_notifications"):
        return service.send_due(runtime)


@app.schedule("rate(1 day)", name="expire_registrations")
def expire_registrations(event: Any) -> dict[str, int]:
    """Cancel the registrations never verified in time (the API frees their phone and e-mail at once
    when someone registers with them; this sweeps the rest), and forget past OTP send counters."""
    from chalicelib.registrations import service

    stale_after = runtime.settings.unverified_expire_after
    return runtime.database.run(lambda conn: service.expire_unverified(conn, stale_after))


@app.schedule("rate(1 day)", name="purge_idempotency_keys")
def purge_idempotency_keys(event: Any) -> dict[str, int]:
    """Forget Idempotency-Keys older than a day, so that the table does not grow without end."""
    from chalicelib.registrations import service

    return {"purged": runtime.database.run(service.purge_idempotency_keys)}


@app.schedule("rate(1 day)", name="purge_personal_data")
def purge_personal_data(event: Any) -> dict[str, int]:
    """Erase the personal data of registrations that ended without becoming a customer once their last
    status change is ``PERSONAL_DATA_RETENTION_DAYS`` old, and outbox rows of that age; counts only."""
    from chalicelib.privacy import service

    with emf.invocation("purge_personal_data"):
        kept_for = runtime.settings.personal_data_retention
        return runtime.database.run(lambda conn: service.purge(conn, kept_for))


@app.schedule("rate(1 hour)", name="schema_drift_watch")
def schema_drift_watch(event: Any) -> dict[str, Any]:
    """verify, hourly: the report in the log, and the drift count as the ``SchemaDrift`` metric."""
    from chalicelib.migrate import watch

    return watch.watch()


def _notify(outbox_ids: list[uuid.UUID]) -> None:
    from chalicelib.notifications import service

    service.send_committed(runtime, outbox_ids)


def _staff(roles: Any = None) -> Any:
    """The caller's staff identity (401 without a valid token), with one of ``roles`` when given (403)."""
    from chalicelib.staff import require
    from chalicelib.web.auth import authenticate

    staff = authenticate(_request().headers, runtime)
    return staff if roles is None else require(staff, roles)


def _record_access(staff: Any, registration_ids: list[str]) -> None:
    """The access record, on the request's line: for each staff request that answers with personal
    data, who (subject and roles) and which registrations; the line already names the route and
    the correlation id, and holds nothing personal itself."""
    line = _read.get()
    if line is None:
        raise RuntimeError("only called while handling a request")
    line["subject"] = staff.username
    line["roles"] = sorted(staff.roles)
    line["registration_ids"] = registration_ids


def _otp_budget() -> Any:
    from chalicelib.registrations.otp import SendBudget
    from chalicelib.web.requests import source_ip

    settings = runtime.settings
    return SendBudget(source_ip(_request()), settings.otp_sends_per_client_per_hour, settings.otp_sends_per_day)


def _body(model: Any) -> Any:
    from chalicelib.web.requests import parse_body

    raw = _request().raw_body
    return parse_body(raw if isinstance(raw, bytes) else None, model)


def _request() -> Any:
    request = app.current_request
    if request is None:
        raise RuntimeError("only called while handling a request")
    return request
