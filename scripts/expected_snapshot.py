"""The expected schema of a release's migrations, replayed at package time and put in the zip.

``scripts/package.py`` calls ``add_to_zip``: on ``$EXPECTED_SCHEMA_DATABASE_URL`` (the
pipeline gives it a PostgreSQL of the RDS instance's major version, infra/foundation.yaml),
else on the embedded PostgreSQL (18) it starts, it replays every migration
into a scratch database there (``expected.build_snapshot``, the code ``verify`` uses),
and writes the result, keyed by the files' checksums and the major version and
checksummed, to ``migrations/expected-schema.json`` in the zip.  The schema gate that
applies this release's new files then compares the live database with it instead of
replaying the migrations on the RDS instance (``chalicelib/migrate/stored.py``).  On
another major version the key does not match and the gate replays, as without it.

    python scripts/expected_snapshot.py [--database-url URL] --out FILE   # the file alone
"""

import argparse
import json
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ZIP_NAME = "migrations/expected-schema.json"  # beside the SQL files at the zip's root (files.migrations_dir)


def build(database_url: str | None = None) -> dict[str, Any]:
    """The snapshot of ``migrations/`` on ``database_url``'s server, or on a fresh embedded PostgreSQL."""
    if database_url:
        return _build_on(database_url)
    from devstack import embedded

    with tempfile.TemporaryDirectory(prefix="expected-snapshot-") as workdir:
        server = embedded.start(Path(workdir) / "data", cleanup_mode="delete")
        try:
            return _build_on(str(server.get_uri()))
        finally:
            server.cleanup()


def _build_on(database_url: str) -> dict[str, Any]:
    import psycopg

    from chalicelib.migrate.expected import build_snapshot
    from chalicelib.migrate.files import load_migrations
    from chalicelib.platform.settings import Settings

    with psycopg.connect(database_url, autocommit=True) as conn:
        snapshot = build_snapshot(conn, load_migrations(ROOT / "migrations"), Settings())
        return snapshot | {"major": conn.info.server_version // 10000}


def add_to_zip(zip_path: Path, database_url: str | None = None) -> str:
    """Write the snapshot into the zip at ``ZIP_NAME``; a line saying what was written."""
    data = build(database_url)
    body = json.dumps(data, sort_keys=True, separators=(",", ":"))
    with zipfile.ZipFile(zip_path, "a", zipfile.ZIP_DEFLATED) as archive:
        if ZIP_NAME in archive.namelist():
            raise RuntimeError(f"{zip_path} already holds {ZIP_NAME}: a file kept by hand in migrations/?")
        info = zipfile.ZipInfo(ZIP_NAME, date_time=(2020, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        archive.writestr(info, body)
    objects = sum(len(rows) for rows in data["entries"][0]["objects"].values())
    return (
        f"{ZIP_NAME}: the expected schema of {objects} objects on PostgreSQL {data['major']}, "
        f"key {data['entries'][0]['key'][:12]}…"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/expected_snapshot.py", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a server of the target's major version (default: embedded PostgreSQL)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.write_text(json.dumps(build(args.database_url), sort_keys=True, separators=(",", ":")))
    print(f"expected_snapshot: wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
