"""``make fuzz`` in miniature: its own stack, every operation, a few generated cases each, four identities."""

import json

import pytest

from chalicelib.web.openapi import document
from devstack import fuzz


@pytest.mark.slow
def test_a_small_fuzz_run_passes_on_every_operation() -> None:
    assert fuzz.main(["--examples", "3", "--phases", "fuzzing"]) == 0
    summary = json.loads((fuzz.OUT / "summary.json").read_text())
    assert [run["name"] for run in summary["runs"]] == ["admin token", "expired token", "forged token", "no token"]
    operations = sum(len(item) for item in document()["paths"].values())
    for run in summary["runs"]:
        assert run["operations"] == run["operations_in_document"] >= operations - 1  # GET /openapi.json is not fuzzed
        assert run["cases"] > 0
        assert run["server_errors"] == 0
