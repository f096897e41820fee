"""The whole `make run` stack in a subprocess (on free ports, its own folder), and chromium to look at it."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import cdp
from tests.support import devstack_process


@pytest.fixture
def chromium() -> str:
    """The chromium binary; skipped where there is none, except in CI (``.ci/run`` installs it)."""
    found = cdp.chromium_path()
    if found is None:
        reason = "no chromium on this machine: `apt-get install -y chromium` (.ci/run installs it when absent)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture
def running_stack(chromium: str, migrated_db: str, tmp_path: Path) -> Iterator[str]:
    """`python -m devstack` (what `make run` runs) on a copy of the migrated database; its API's URL."""
    running = devstack_process.start(migrated_db, tmp_path / "devstack")
    try:
        yield running.api_url
    finally:
        devstack_process.stop(running)
