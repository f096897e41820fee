"""The hourly drift watch: verify, the report in the log, ``SchemaDrift`` as a metric.

A hand edit in production (a constraint swapped, an index dropped) is then known
within the hour, by the alarm on ``SchemaDrift > 0``, not at the next release.
"""

import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

METRIC = "SchemaDrift"


def watch(verify: Callable[[], dict[str, Any]] | None = None, *, stream: TextIO | None = None) -> dict[str, Any]:
    """Run verify, log its report, emit the drift count; returns ``{"drift": n, "ok": ...}``.

    The count is the invocation's one EMF line (``chalicelib.platform.emf``), on ``stream``
    (default: standard output, Lambda's log).
    """
    from chalicelib.platform import emf

    if verify is None:
        from chalicelib.migrate import run

        def verify() -> dict[str, Any]:
            return run("verify")

    report = verify()
    out = stream or sys.stdout
    print(json.dumps({"schema_drift_watch": report}, default=str), file=out, flush=True)
    count = len(report["drift"])
    with emf.invocation("schema_drift_watch", write=lambda line: print(line, file=out, flush=True)):
        emf.count(METRIC, count)
    return {"ok": report["ok"], "drift": count}
