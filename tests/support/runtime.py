"""A fresh ``Runtime`` for ``app.py``: what a new Lambda container would build, from the environment as it is now."""

import pytest

import app as app_module
from chalicelib.platform.runtime import Runtime


def new_container(monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """Give ``app.py`` a new ``Runtime`` (the one it had comes back after the test); closes the old connection."""
    app_module.runtime.database.reset()
    runtime = Runtime()
    monkeypatch.setattr(app_module, "runtime", runtime)
    return runtime
