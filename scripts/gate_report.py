"""Why a deploy failed, from the stack's events: the schema gate's answer first.

    python scripts/gate_report.py STACK_EVENTS.json

``STACK_EVENTS.json`` is what ``aws cloudformation describe-stack-events --output
json`` printed (newest first).  Prints, for the stack's latest operation, every
resource that failed and CloudFormation's reason: for ``SchemaMigration`` that is
the migrate function's ``Reason`` (each drift's effect first).  Exit 0 when it
found the gate's answer, 1 when the failure was elsewhere or not found.
"""

import json
import sys
from pathlib import Path
from typing import Any

GATE = "SchemaMigration"
_STARTS = {"CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS"}


def latest_operation(events: list[dict[str, Any]], stack_name: str | None = None) -> list[dict[str, Any]]:
    """The events of the stack's most recent operation (oldest first), from the newest-first list."""
    taken: list[dict[str, Any]] = []
    for event in events:
        taken.append(event)
        is_stack = event.get("ResourceType") == "AWS::CloudFormation::Stack"
        if (
            is_stack
            and event.get("ResourceStatus") in _STARTS
            and event.get("ResourceStatusReason") == "User Initiated"
        ):
            break
    return list(reversed(taken))


def failures(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(logical id, status, reason) of each failed resource of the latest operation, the gate first."""
    found = [
        (str(e.get("LogicalResourceId")), str(e.get("ResourceStatus")), str(e.get("ResourceStatusReason") or ""))
        for e in latest_operation(events)
        if str(e.get("ResourceStatus", "")).endswith("_FAILED")
    ]
    return sorted(found, key=lambda failure: failure[0] != GATE)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    document = json.loads(Path(argv[0]).read_text() or "{}")
    return 0 if explain(document.get("StackEvents", [])) else 1


def explain(events: list[dict[str, Any]]) -> bool:
    """Print each failed resource of the latest operation with its reason, on stderr; True when the gate refused."""
    found = failures(events)
    for logical_id, status, reason in found:
        print(f"{logical_id} {status}: {reason}", file=sys.stderr)
    if not found:
        print("no failed resource in the stack's latest operation", file=sys.stderr)
    gate = any(logical_id == GATE for logical_id, _, _ in found)
    if gate:
        print(
            "the schema gate refused: fix what the reason names (docs/operations.md), then run scripts/deploy again",
            file=sys.stderr,
        )
    return gate


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
