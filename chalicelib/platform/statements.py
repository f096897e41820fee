"""The one registry of every SQL statement the application runs.

A data-access module writes each statement as ``statement("...")`` (a statement
built from parts registers each form it can take).  ``migrate verify`` imports
every module of ``chalicelib`` and PREPAREs each registered statement against the
live database in a read-only transaction, so a statement that no longer fits the
schema fails the deploy instead of the first request.  It imports only the modules
whose source imports ``statement`` (read, not imported, to find them): the others
(the pydantic models, the web layer) would cost ``migrate`` a third of its cold start.  The test suite records
every statement the code executes and fails on one that is not here
(``tests/support/statement_scan.py``).

Nothing is imported here: registering costs a dict insert at import time.
"""

import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pkgutil

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Statement:
    """One registered statement: the module that runs it, and its text (psycopg placeholders)."""

    module: str
    text: str

    @property
    def summary(self) -> str:
        """The statement on one line, cut short: enough to find it in its module."""
        line = normalize(self.text)
        return line if len(line) <= 100 else line[:97] + "…"


_registry: dict[str, Statement] = {}


def statement(text: str) -> str:
    """Register ``text`` as a statement of the calling module, and return it unchanged."""
    module = sys._getframe(1).f_globals.get("__name__", "?")
    _registry.setdefault(normalize(text), Statement(module, text))
    return text


def normalize(text: str) -> str:
    """Whitespace folded: how a registered statement and an executed one are matched."""
    return _SPACE.sub(" ", text).strip()


def registered() -> list[Statement]:
    """Every statement registered by the modules imported so far (``load_all`` imports them all)."""
    return list(_registry.values())


def is_registered(text: str) -> bool:
    return normalize(text) in _registry


_REGISTERS = "platform.statements import statement"


def load_all() -> list[Statement]:
    """Import every module of ``chalicelib`` (but the migrate package) that registers statements; all of them."""
    import importlib
    import pkgutil

    import chalicelib

    for info in pkgutil.walk_packages(chalicelib.__path__, "chalicelib."):
        if not info.name.startswith("chalicelib.migrate") and _registers(info):
            importlib.import_module(info.name)
    return registered()


def _registers(info: "pkgutil.ModuleInfo") -> bool:
    """Whether the module's source imports ``statement`` (a module without its source is imported, to be sure)."""
    spec = info.module_finder.find_spec(info.name, None)
    origin = getattr(spec, "origin", None)
    if not origin or not origin.endswith(".py"):
        return True
    try:
        with open(origin, encoding="utf-8") as source:
            return _REGISTERS in source.read()
    except OSError:
        return True
