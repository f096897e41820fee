"""``python -m chalicelib.migrate {plan,apply,verify} [--database-url URL]``.

Prints the JSON report on stdout (progress goes to stderr).  Exit 0 when ok, 1
on drift or failure, 2 on bad usage.
"""

import argparse
import json
import sys

from chalicelib.migrate import ACTIONS, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.migrate", description=__doc__.splitlines()[0])
    parser.add_argument(
        "action",
        choices=ACTIONS,
        help="plan: what apply would do; apply: apply, then verify; verify: compare the live database with the code",
    )
    parser.add_argument("--database-url", help="defaults to DATABASE_URL, or the RDS secret at DB_SECRET_ARN")
    args = parser.parse_args(argv)  # exits 2 on bad usage
    report = run(args.action, args.database_url)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
