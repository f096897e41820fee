"""Apply SQL migrations and verify the live database against what the code expects.

Entry points: ``run`` (used by the ``migrate`` Lambda in ``app.py``) and
``python -m chalicelib.migrate {plan,apply,verify}``.  Both produce the same JSON
report; see ``report.Report``.
"""

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chalicelib.migrate.report import Drift, Report
from chalicelib.platform.settings import ConfigurationError, Settings
from chalicelib.schema_contract import CONTRACT, EnumColumn

ACTIONS = ("plan", "apply", "verify")


class MigrationError(Exception):
    """A migrate run that did not end ok; the message is the JSON report."""


def run(
    action: str,
    database_url: str | None = None,
    *,
    migrations_dir: Path | None = None,
    contract: Sequence[EnumColumn] = CONTRACT,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Run ``action`` and return the report as a dict (``ok`` False on any drift or failure).

    Raises ``ValueError`` for an unknown action; every other failure (no
    connection, bad files, the lock never coming) is drift in the report.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    from chalicelib.migrate import runner
    from chalicelib.migrate.files import MigrationFilesError, load_migrations
    from chalicelib.platform import database as db
    from chalicelib.platform.runtime import Runtime

    started = time.perf_counter()
    runtime = Runtime(settings=settings)
    settings = runtime.settings
    try:
        files = load_migrations(migrations_dir)
        url = database_url or runtime.conninfo()
        with db.connect(url, settings) as conn:
            if action == "apply":
                report = runner.apply(conn, files, contract, settings)
            elif action == "plan":
                report = runner.plan(conn, files, contract)
            else:
                report = runner.verify(conn, files, contract)
    except (MigrationFilesError, ConfigurationError, runner.MigrationLockTimeoutError) as error:
        report = _failed(action, type(error).__name__, str(error))
    except runner.database_error() as error:
        report = _failed(action, "database_unavailable", f"could not talk to the database: {error}".strip())
    report.duration_ms = round((time.perf_counter() - started) * 1000, 1)
    return report.as_dict()


def raise_unless_ok(report: dict[str, Any]) -> dict[str, Any]:
    """Return ``report``, or raise ``MigrationError`` carrying it when it is not ok."""
    if not report["ok"]:
        raise MigrationError(json.dumps(report, indent=2))
    return report


def _failed(action: str, kind: str, message: str) -> Report:
    kinds = {
        "MigrationFilesError": "migration_files_invalid",
        "ConfigurationError": "configuration_invalid",
        "MigrationLockTimeoutError": "lock_timeout",
    }
    return Report(action=action, drift=[Drift(kinds.get(kind, kind), message, None)])
