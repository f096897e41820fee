"""WhatsApp messages through the outbox: rows written by other features' SQL, sent from here.

- ``service``: what the entry points call (send right after commit; the scheduled run);
- ``sender``: claiming, sending and recording each row, retries and backoff;
- ``outbox``: the SQL of ``notification_outbox``;
- ``whatsapp``: the Cloud API client (standard library only).

May import: ``chalicelib.platform`` and the shared vocabulary.  Not another feature,
not ``chalicelib.web``.
"""
