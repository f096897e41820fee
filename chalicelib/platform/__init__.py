"""What every feature runs on: settings, secrets, the database, SQS, logs, and the ``Runtime``.

One ``Runtime`` per warm container (``runtime.py``) holds what is built once, lazily.
May import: the shared vocabulary (``chalicelib.errors``, ``chalicelib.staff``, ...)
and the standard library; boto3, psycopg and PyJWT only inside the functions that
need them (cold start).  Never a feature, never ``chalicelib.web``.
"""
