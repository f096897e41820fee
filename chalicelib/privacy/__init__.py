"""Personal data (Indonesia's PDP law, UU 27/2022): export on request, erasure on request, and
the daily purge of what is kept past its time.

- ``models``: the erasure request body;
- ``service``: the verbs (export, erase, purge);
- ``repository``: the SQL (the only module here that talks to psycopg).

May import: ``chalicelib.platform`` and the shared vocabulary.  Not another feature,
not ``chalicelib.web``.
"""
