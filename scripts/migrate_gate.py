"""The deploy's migrate gate: exit 0 only when the ``migrate`` invoke succeeded with ``"ok": true``.

    python scripts/migrate_gate.py INVOKE_OUTPUT.json PAYLOAD.json

``INVOKE_OUTPUT.json`` is what ``aws lambda invoke`` printed (``StatusCode``, and
``FunctionError`` when the handler raised); ``PAYLOAD.json`` is the response it wrote:
the report, or Lambda's error object whose ``errorMessage`` carries the report.
Prints the report either way, on stderr when it fails.
"""

import json
import sys
from pathlib import Path
from typing import Any


def verdict(invoke: dict[str, Any], payload: Any) -> tuple[bool, str]:
    """(passed, what to print) for one invoke's output and payload."""
    if invoke.get("FunctionError"):
        message = payload.get("errorMessage", "") if isinstance(payload, dict) else str(payload)
        kind = payload.get("errorType", "error") if isinstance(payload, dict) else "error"
        return False, f"migrate failed ({kind}): {message}"
    if not isinstance(payload, dict) or payload.get("ok") is not True:
        return False, "migrate did not report ok: " + json.dumps(payload, indent=2)
    return True, json.dumps(payload, indent=2)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    invoke = json.loads(Path(argv[0]).read_text() or "{}")
    raw = Path(argv[1]).read_text()
    try:
        payload: Any = json.loads(raw)
    except ValueError:
        payload = raw
    passed, text = verdict(invoke, payload)
    print(text, file=sys.stdout if passed else sys.stderr)
    if not passed:
        print("deploy stopped: read the drift's messages and fix_sql (README, Operations)", file=sys.stderr)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
