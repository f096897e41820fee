"""The HTTP edge: who is calling (a Bearer token), request bodies, errors as responses, OpenAPI.

- ``auth``: a ``Staff`` from the ``Authorization`` header;
- ``requests``: body size and parsing;
- ``responses``: the one place errors become the pinned JSON error body;
- ``openapi``: the document served at ``GET /openapi.json``.

May import: the features (for their models), ``chalicelib.platform`` and the shared
vocabulary.  No feature imports this package; nothing here imports ``chalice``.
"""
