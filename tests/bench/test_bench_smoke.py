"""Every benchmark runs, with a few iterations and tiny tables, so that none of them rots.

These are not timed tests: the figures are not checked, only that each script
runs to the end and reports the figures its targets are built from.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import app as app_module
from bench import __main__ as bench_main
from bench import _support


@pytest.fixture
def restored_environment() -> Iterator[None]:
    """The benchmarks point the app at their databases through the environment: undo that."""
    saved, runtime = dict(os.environ), app_module.runtime
    yield
    app_module.runtime.database.reset()
    app_module.runtime = runtime
    os.environ.clear()
    os.environ.update(saved)


# Split so that pytest-xdist runs them side by side; the cost on paper needs the two together.
GROUPS = [["cold_start"], ["request_cost", "worker"], ["migrations", "gate"], ["scale"]]


@pytest.mark.parametrize("names", GROUPS, ids=["+".join(g) for g in GROUPS])
def test_each_benchmark_runs_and_writes_its_results(
    names: list[str], server_url: str, tmp_path: Path, restored_environment: None
) -> None:
    out = tmp_path / "RESULTS.md"
    only = [arg for name in names for arg in ("--only", name)]
    results = bench_main.main(["--smoke", *only, "--database-url", server_url, "--out", str(out)])

    for name in names:
        assert "error" not in results[name], results[name]
        assert results[name]["targets"], name
    text = out.read_text()
    assert "## Targets" in text
    assert "## Cost on paper" in text
    if "worker" in names:
        assert results["worker"]["one_statement_worker"]["round_trips_per_record"] > 0
        assert results["request_cost"]["POST /registrations"]["round_trips_per_request"]["max"] >= 1
        assert results["cost"]["total_gb_s"] > 0
    if "migrations" in names:
        assert results["migrations"]["verify"]["round_trips"]
        assert results["gate"]["nothing_pending"]["n"] == 2


def test_every_benchmark_is_smoke_tested() -> None:
    assert sorted(n for group in GROUPS for n in group) == sorted(bench_main.MAINS)


def test_the_support_module_gives_a_median_and_a_p99() -> None:
    figures = _support.summary([0.001 * n for n in range(1, 101)])
    assert figures["median_ms"] == pytest.approx(50.5)
    assert figures["p99_ms"] == pytest.approx(99.0)
