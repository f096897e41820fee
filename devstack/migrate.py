"""`make migrate-plan|apply|verify`: the migrate CLI against ``DATABASE_URL``, or else `make run`'s own database.

``python -m chalicelib.migrate`` needs a URL (and the venv's Python: ``.venv/bin/python``).
This finds the embedded server of `make run` in ``.local/pgdata`` (``DEVSTACK_DIR``) by
itself: it attaches to it while `make run` serves, or starts it for the one command and
stops it after.  Exit codes are the CLI's: 0 ok, 1 drift or failure, 2 bad usage or no
database to talk to.

    python -m devstack.migrate {plan,apply,verify}
"""

import os
import sys

from chalicelib.migrate.__main__ import main as migrate_main
from devstack import stack


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    url = database_url(os.environ)
    if url is None:
        print(
            f"make migrate: DATABASE_URL is not set and `make run` has no database in {stack.LOCAL / 'pgdata'} yet: "
            "run `make run` once, or set DATABASE_URL",
            file=sys.stderr,
        )
        return 2
    return migrate_main([*args, "--database-url", url])


def database_url(env: "os._Environ[str] | dict[str, str]") -> str | None:
    """``DATABASE_URL``, or the URL of `make run`'s embedded server (started if needed); None when neither exists."""
    if env.get("DATABASE_URL"):
        return env["DATABASE_URL"]
    if not (stack.LOCAL / "pgdata" / "PG_VERSION").exists():
        return None
    return stack.embedded_database()


if __name__ == "__main__":
    sys.exit(main())
