"""A pytest plugin: every SQL statement the application's code executes must be in its registry.

At session start it wraps psycopg's ``Cursor.execute`` (psycopg's, not our code)
to record each query run from a module of ``chalicelib`` (the migrate package
aside: it runs migration files and catalog queries, not application statements).
At the end, any recorded statement that ``chalicelib.platform.statements`` does not hold
fails the session, as the PII scan does with log lines; the terminal summary
gives the counts (summed over xdist workers) and the strays.
"""

import functools
import sys
from typing import Any

import psycopg
import pytest

from chalicelib.platform import statements

_KEY = "statement_scan"
_seen: dict[str, str] = {}  # normalized text -> the module that ran it
_totals: dict[str, Any] = {"executed": 0, "distinct": set(), "strays": {}}
_original = psycopg.Cursor.execute


def _caller_module() -> str | None:
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name.startswith("chalicelib.") and not name.startswith("chalicelib.migrate"):
            return str(name)
        if name.startswith(("tests.", "bench.", "devstack.")):
            return None  # the test's own SQL
        frame = frame.f_back  # type: ignore[assignment]
    return None


@functools.wraps(_original)
def _recording_execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
    module = _caller_module()
    if module is not None:
        text = (
            query if isinstance(query, str) else query.decode() if isinstance(query, bytes) else query.as_string(self)
        )
        _seen.setdefault(statements.normalize(text), module)
        _totals["executed"] += 1
    return _original(self, query, *args, **kwargs)


def pytest_sessionstart(session: pytest.Session) -> None:
    psycopg.Cursor.execute = _recording_execute  # type: ignore[method-assign]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    psycopg.Cursor.execute = _original  # type: ignore[method-assign]
    statements.load_all()
    strays = {text: module for text, module in _seen.items() if not statements.is_registered(text)}
    mine = {"executed": _totals["executed"], "distinct": sorted(_seen), "strays": strays}
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[_KEY] = mine
        return
    _add(mine)
    if _totals["strays"] and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_testnodedown(node: Any, error: Any) -> None:
    _add(getattr(node, "workeroutput", {}).get(_KEY, {}))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(
        f"Statement scan: {_totals['executed']} statements executed by chalicelib, "
        f"{len(_totals['distinct'])} distinct, {len(_totals['strays'])} not in chalicelib.platform.statements"
    )
    for text, module in sorted(_totals["strays"].items()):
        terminalreporter.write_line(f"  {module}: {text[:200]}", red=True)


def _add(counts: dict[str, Any]) -> None:
    _totals["executed"] += counts.get("executed", 0)
    _totals["distinct"].update(counts.get("distinct", []))
    _totals["strays"].update(counts.get("strays", {}))
