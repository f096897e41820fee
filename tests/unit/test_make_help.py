"""`make help` lists every target the Makefile declares (.PHONY)."""

import re
import subprocess

from tests.conftest import ROOT


def test_make_help_lists_every_phony_target() -> None:
    makefile = (ROOT / "Makefile").read_text()
    declared = re.search(r"^\.PHONY:((?:.*\\\n)*.*)$", makefile, re.MULTILINE)
    assert declared is not None
    phony = set(declared.group(1).replace("\\\n", " ").split())
    listed = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    shown = {line.split()[1] for line in listed.splitlines() if line.startswith("  make ")}
    assert shown == phony
