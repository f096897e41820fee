"""The shell variables of the README's walk-through, for `make run`'s stack on this machine.

    eval "$(.venv/bin/python -m devstack.env)"

Prints ``export`` lines: ``API`` and ``SINK`` (the API and the WhatsApp sink, from the
same ``PORT`` and ``WHATSAPP_PORT`` that `make run` reads) and an HS256 staff token per
role (``TOKEN_CS``, ``TOKEN_SURVEYOR``, ``TOKEN_APPROVER``, ``TOKEN_ADMIN``), signed with
the key `make run` keeps in ``.local/`` (``DEVSTACK_DIR``), or ``AUTH_JWT_SECRET``.
"""

import os
import shlex
import sys
from collections.abc import Mapping

from devstack.stack import HOST, ROLES, Ports, local_secrets, staff_token


def export_lines(env: Mapping[str, str]) -> list[str]:
    ports = Ports.from_env(env)
    secret = env.get("AUTH_JWT_SECRET") or local_secrets()["auth_jwt_secret"]
    values = {"API": f"http://{HOST}:{ports.api}", "SINK": f"http://{HOST}:{ports.whatsapp}"}
    values |= {f"TOKEN_{role.upper()}": staff_token(secret, role) for role in ROLES}
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


def main() -> int:
    print("\n".join(export_lines(os.environ)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
