"""Where the entry points hand committed outbox rows to WhatsApp: right after commit, and on schedule."""

import logging
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from chalicelib.notifications.whatsapp import WhatsAppClient
from chalicelib.platform.runtime import Runtime
from chalicelib.platform.settings import ConfigurationError

log = logging.getLogger(__name__)


def send_committed(runtime: Runtime, outbox_ids: Iterable[UUID]) -> None:
    """Send the messages a committed change wrote, now; never raises.

    Whatever is not sent here (WhatsApp down or not configured, the database gone)
    stays pending for ``send_due``: the change that wrote the rows is committed and
    its answer must not turn into an error because of a notification.
    """
    ids = list(outbox_ids)
    client = _client(runtime) if ids else None
    if client is None:
        return
    # Imported here: a cold start with nothing to send (WhatsApp not configured) does not pay for it.
    from chalicelib.notifications import sender

    try:
        runtime.database.run(lambda conn: sender.send_now(conn, client, ids))
    except Exception as error:
        log.warning("outbox rows not sent now (%s); the scheduled sender will", type(error).__name__)


def send_due(runtime: Runtime) -> dict[str, Any]:
    """One scheduled run: counts by outcome.  Raises ``ConfigurationError`` without WhatsApp settings."""
    from chalicelib.notifications import sender

    client = WhatsAppClient.from_settings(runtime.settings)
    counts = runtime.database.run(lambda conn: sender.send_due(conn, client))
    if any(counts.values()):  # a run every minute that found nothing due is not news
        log.info("outbox run", extra=counts)
    return counts


def _client(runtime: Runtime) -> WhatsAppClient | None:
    try:
        return WhatsAppClient.from_settings(runtime.settings)
    except ConfigurationError as error:
        if runtime.first_time("warn: WhatsApp not configured"):  # once per container, not once per request
            log.warning("messages are not sent right after commit: %s", error)
        return None
