"""``load_all`` finds every registered statement while importing only the modules that register them."""

import json
import subprocess
import sys

from tests.conftest import ROOT

_PROBE = """
import importlib, json, pkgutil, sys
import chalicelib
from chalicelib.platform.statements import load_all, registered
found = sorted(s.text for s in load_all())
imported = sorted(m for m in sys.modules if m.startswith("chalicelib."))
heavy = sorted(m for m in ("pydantic", "chalice", "phonenumbers", "email_validator") if m in sys.modules)
for info in pkgutil.walk_packages(chalicelib.__path__, "chalicelib."):
    importlib.import_module(info.name)
print(json.dumps({"found": found, "all": sorted(s.text for s in registered()), "heavy": heavy}))
"""


def test_load_all_finds_every_statement_without_importing_the_models_or_the_web() -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    assert result["found"], "no statement registered"
    # Every module imported afterwards registered nothing that load_all missed.
    assert result["found"] == result["all"]
    assert result["heavy"] == []
