"""Fault-injection tests: every test here carries the ``faults`` marker (``make faults`` runs them).

The shared fixtures (``api_client``, ``package``, ...) are in ``tests/conftest.py``.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.own_postgres import OwnPostgres

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.faults)


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    """A server this test alone uses, and may stop and start."""
    with OwnPostgres() as server:
        yield server
