"""The short soak (``make soak`` runs the long one): random load from several processes, then the invariants."""

import pytest

from tests.soak.runner import run_soak

pytestmark = pytest.mark.soak


def test_a_short_soak_keeps_every_invariant(migrated_db: str) -> None:
    summary = run_soak(migrated_db, seconds=10, processes=4, seed=7)
    print({key: value for key, value in summary.items() if key != "outcomes"})
    assert summary["violations"] == []
    assert summary["exit_codes"] == [0, 0, 0, 0]
    outcomes = summary["outcomes"]
    # The load did reach every kind of outcome it is meant to exercise.
    for seen in ("register 201", "register 409", "verify (guess) 400", "approve 200", "sqs record acknowledged"):
        assert outcomes.get(seen, 0) > 0, seen
    assert summary["customer_created"] > 0
    assert summary["customers"] == summary["customer_created"]
