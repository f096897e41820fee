"""A pytest plugin: every log line the suite produces, scanned for personal data: unmasked phone
numbers and e-mail addresses, and the names and addresses the tests register people with.

At session start it configures logging as the Lambdas do (``chalicelib.platform.logs.configure``:
masking in the record factory, JSON lines) and adds a root handler that formats each
record with ``JsonFormatter`` and searches the line for an Indonesian mobile number
(``+62 8…`` / ``08…``), an e-mail address, or one of the tests' people (``NAME_OR_ADDRESS``:
names and addresses cannot be recognised in general, but the suite's own are known).
Any hit fails the session, and the terminal summary gives the lines scanned and the hits
(summed over xdist workers).
"""

import logging
import re
from typing import Any

import pytest

from chalicelib.platform import logs

PHONE = re.compile(r"(?<![\w*-])(?:\+?62|0)8\d{8,11}(?![\w*])")
EMAIL = re.compile(r"(?<![\w*.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# The names and street addresses the tests register people with (tests/support/api.py,
# tests/integration/test_personal_data.py, the OpenAPI examples).
PEOPLE = ("Siti Nurhaliza", "Dewi Lestari", "Jl. Merdeka", "Jl. Kenanga")
NAME_OR_ADDRESS = re.compile("|".join(re.escape(p) for p in PEOPLE), re.IGNORECASE)
_KEY = "pii_scan"


class PiiScanHandler(logging.Handler):
    """Counts the lines it formats and keeps those that hold personal data (at most 20)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logs.JsonFormatter())
        self.lines = 0
        self.hits = 0
        self.examples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a record that cannot be formatted is not ours to fail on here
            return
        self.lines += 1
        found = PHONE.findall(line) + EMAIL.findall(line) + NAME_OR_ADDRESS.findall(line)
        if found:
            self.hits += 1
            if len(self.examples) < 20:
                self.examples.append(f"{record.name}: {found} in {line[:300]}")


_handler = PiiScanHandler()
_totals: dict[str, Any] = {"lines": 0, "hits": 0, "examples": []}


def pytest_sessionstart(session: pytest.Session) -> None:
    logs.configure()
    logging.getLogger().addHandler(_handler)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """A test that leaves ``logging.disable`` on silences every later test's lines in its worker
    (and this scan of them): it fails, and the switch is put back."""
    yield
    left = logging.root.manager.disable
    if left:
        logging.disable(logging.NOTSET)
        pytest.fail(f"{item.nodeid} left logging.disable({logging.getLevelName(left)}) on", pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    logging.getLogger().removeHandler(_handler)
    mine = {"lines": _handler.lines, "hits": _handler.hits, "examples": _handler.examples}
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller adds it up
        workeroutput[_KEY] = mine
        return
    _add(mine)
    if _totals["hits"]:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist's controller: a worker finished, with its counts."""
    _add(getattr(node, "workeroutput", {}).get(_KEY, {}))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(
        f"PII scan: {_totals['lines']} log lines scanned, "
        f"{_totals['hits']} with an unmasked phone number, e-mail, name or address"
    )
    for example in _totals["examples"]:
        terminalreporter.write_line(f"  {example}", red=True)


def _add(counts: dict[str, Any]) -> None:
    _totals["lines"] += counts.get("lines", 0)
    _totals["hits"] += counts.get("hits", 0)
    _totals["examples"].extend(counts.get("examples", [])[: 20 - len(_totals["examples"])])
