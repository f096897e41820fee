"""Registrations: sign-up, the workflow actions, verification by one-time code, and internet packages.

- ``models``: request bodies (pydantic);
- ``service``: the verbs (register, act, list, get, packages);
- ``actions``: which action a URL names, its body, and who acts (registrant or staff);
- ``verification`` and ``otp``: the one-time code;
- ``repository``: the SQL (the only module here that talks to psycopg).

May import: ``chalicelib.platform`` and the shared vocabulary.  Not another feature,
not ``chalicelib.web``.
"""
