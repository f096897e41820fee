"""Entry points: API Gateway routes, the SQS worker, and the ``migrate`` Lambda.

Each handler translates its event and calls one function of chalicelib; heavy
modules (psycopg, boto3) are imported at first use so that cold start stays light.
"""

from typing import Any

from chalice.app import Chalice

app = Chalice(app_name="registration-backend")


@app.lambda_function(name="migrate")
def migrate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``{"action": "plan" | "apply" | "verify"}`` -> the JSON report; raises unless ok."""
    from chalicelib.migrate import raise_unless_ok, run

    return raise_unless_ok(run(str(event.get("action", ""))))
