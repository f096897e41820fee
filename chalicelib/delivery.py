"""Where the entry points hand committed outbox rows to WhatsApp: right after commit, and on schedule."""

import logging
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from chalicelib import notifications
from chalicelib.config import ConfigurationError, settings
from chalicelib.runtime import Database
from chalicelib.whatsapp import WhatsAppClient

log = logging.getLogger(__name__)
_warned = False


def send_committed(database: Database, outbox_ids: Iterable[UUID]) -> None:
    """Send the messages a committed change wrote, now; never raises.

    Whatever is not sent here (WhatsApp down or not configured, the database gone)
    stays pending for ``send_due``: the change that wrote the rows is committed and
    its answer must not turn into an error because of a notification.
    """
    ids = list(outbox_ids)
    client = _client() if ids else None
    if client is None:
        return
    try:
        database.run(lambda conn: notifications.send_now(conn, client, ids))
    except Exception as error:
        log.warning("outbox rows not sent now (%s); the scheduled sender will", type(error).__name__)


def send_due(database: Database) -> dict[str, Any]:
    """One scheduled run: counts by outcome.  Raises ``ConfigurationError`` without WhatsApp settings."""
    client = WhatsAppClient.from_settings(settings())
    counts = database.run(lambda conn: notifications.send_due(conn, client))
    if any(counts.values()):  # a run every minute that found nothing due is not news
        log.info("outbox run", extra=counts)
    return counts


def _client() -> WhatsAppClient | None:
    global _warned
    try:
        return WhatsAppClient.from_settings(settings())
    except ConfigurationError as error:
        if not _warned:  # once per container, not once per request
            _warned = True
            log.warning("messages are not sent right after commit: %s", error)
        return None
