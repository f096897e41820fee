"""The registration backend below ``app.py``, grouped by feature.

Layers, top to bottom; a module imports only from its own layer or below:

- ``web``: the HTTP edge (reading a Staff from a token, request bodies, errors as
  responses, the OpenAPI document).  Only ``app.py`` (and tools) import it.
- the features: ``registrations``, ``customers``, ``notifications``, ``migrate``.
  They do not import each other; what one hands another goes through ``app.py``
  (e.g. the outbox ids a registration or the worker wrote reach
  ``notifications`` as arguments).
- ``platform``: settings, secrets, the database connection, SQS, logs, and the
  ``Runtime`` that holds one of each per container.
- the shared vocabulary, at this level: ``statuses``, ``workflow`` (the
  transition table), ``staff`` (who acts), ``errors``, ``jsontypes``,
  ``schema_contract``.  It imports nothing but itself.

Nothing here imports ``chalice``: that is ``app.py``'s alone.
"""
