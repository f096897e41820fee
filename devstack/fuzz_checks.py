"""The one error voice, as a check: every error body is compact JSON in the one envelope,
``{"error": {"code", "message", "details"}}``, with a code of the table whose status is the
answer's, and a message (and each problem) in the project's words, never a library's.

``make fuzz`` loads this file into schemathesis (``SCHEMATHESIS_HOOKS``), so every answer of
every generated case is checked; the tests call ``envelope_problems`` on the answers they get.
"""

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # schemathesis loads this file by path
    sys.path.insert(0, str(ROOT))

from chalicelib.errors import ERROR_CODE_BY_NAME  # noqa: E402

# Codes whose status is API Gateway's own (any 4xx, any 5xx).
_ANY_STATUS = frozenset({"request_rejected", "gateway_error"})
# How library text starts (pydantic, Chalice, email-validator, json, http.server, API Gateway).
_LIBRARY_TEXT = re.compile(
    r"^(Input should|Field required|String should|Value error|Assertion failed|Invalid JSON|Unsupported|"
    r"Missing Authentication Token|An email address|The email address|The domain name|Expecting |"
    r"Extra inputs|Error response|Internal server error|An internal server error)",
)


def envelope_problems(status: int, raw: bytes) -> list[str]:
    """What is wrong with the error answer ``raw`` (status ``status``); empty when it speaks in the one voice."""
    if status < 400:
        return []
    try:
        body = json.loads(raw)
    except ValueError:
        return [f"the {status} body is not JSON: {raw[:200]!r}"]
    text = raw.decode()
    compact = {json.dumps(body, separators=(",", ":"), ensure_ascii=flag) for flag in (True, False)}
    problems = [] if text in compact else [f"the {status} body is not compact JSON: {text[:200]}"]
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(error, dict):
        return [*problems, f"the {status} body is not the envelope: {text[:200]}"]
    if set(error) != {"code", "message", "details"}:
        problems.append(f"the error has {sorted(error)}, not code, message and details")
    code, message, details = error.get("code"), error.get("message"), error.get("details")
    known = ERROR_CODE_BY_NAME.get(str(code))
    if known is None:
        problems.append(f"{code!r} is not a code of the table")
    elif known.status != status and code not in _ANY_STATUS:
        problems.append(f"{code} is a {known.status}, answered as {status}")
    if not isinstance(details, dict):
        problems.append(f"details is {type(details).__name__}, not an object")
    texts = [message] + [p.get("problem") for p in (details or {}).get("problems", []) if isinstance(p, dict)]
    for said in texts:
        if not isinstance(said, str) or not said:
            problems.append(f"an empty or non-text message: {said!r}")
        elif said[0].isupper() or _LIBRARY_TEXT.match(said):
            problems.append(f"not in the project's words: {said!r}")
    return problems


def _check(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code >= 400 and case.method.upper() != "HEAD":
        problems = envelope_problems(response.status_code, response.content)
        if problems:
            raise AssertionError("; ".join(problems))
    return None


try:
    import schemathesis
except ImportError:  # the tests import envelope_problems; schemathesis is there too, but need not be
    pass
else:

    @schemathesis.check
    def error_envelope(ctx: Any, response: Any, case: Any) -> bool | None:
        """Every error body is compact JSON in the one envelope, in the project's words."""
        return _check(ctx, response, case)
