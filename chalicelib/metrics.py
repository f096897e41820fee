"""CloudWatch metrics as Embedded Metric Format log lines: no API call, no dependency.

A JSON line printed to a Lambda's log with an ``_aws`` member becomes metrics in
CloudWatch: ``emit({"SchemaDrift": 2}, Stage="prod")``.  Namespace
``RegistrationBackend`` (pinned, DESIGN.md "Metrics").
"""

import json
import os
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

NAMESPACE = "RegistrationBackend"


def stage() -> str:
    """The deployed stage (``STAGE``), or ``local``."""
    return os.environ.get("STAGE", "local")


def emf_line(
    values: Mapping[str, float],
    *,
    unit: str = "Count",
    dimensions: Mapping[str, str] | None = None,
    properties: Mapping[str, Any] | None = None,
    timestamp_ms: int | None = None,
) -> str:
    """One EMF JSON line: ``values`` as metrics of ``unit``, under ``dimensions`` (default: the stage)."""
    dimensions = dict(dimensions if dimensions is not None else {"Stage": stage()})
    document: dict[str, Any] = {
        **(properties or {}),
        "_aws": {
            "Timestamp": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [sorted(dimensions)],
                    "Metrics": [{"Name": name, "Unit": unit} for name in values],
                }
            ],
        },
        **dimensions,
        **values,
    }
    return json.dumps(document, separators=(",", ":"))


def emit(values: Mapping[str, float], *, stream: TextIO | None = None, **options: Any) -> str:
    """Print ``emf_line(values, **options)`` to stdout (the Lambda's log); returns the line."""
    line = emf_line(values, **options)
    print(line, file=stream or sys.stdout, flush=True)
    return line
