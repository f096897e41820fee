"""CloudWatch metrics as Embedded Metric Format lines (namespace ``RegistrationBackend``).

One JSON object per line on standard error, which Lambda sends to CloudWatch Logs
like standard output; CloudWatch turns each into a metric data point, no API call and
no client needed.  Not standard output: local tools (the benchmarks, the migrate CLI)
print their results there.
"""

import json
import sys
import time

NAMESPACE = "RegistrationBackend"


def emit(name: str, value: float, unit: str = "Count") -> None:
    """One data point of metric ``name``."""
    line = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {"Namespace": NAMESPACE, "Dimensions": [[]], "Metrics": [{"Name": name, "Unit": unit}]}
            ],
        },
        name: value,
    }
    print(json.dumps(line), file=sys.stderr, flush=True)
