"""The whole `make run` stack in a subprocess (on free ports, its own folder), and chromium to look at it."""

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import stack
from tests.browser import cdp
from tests.conftest import ROOT


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
    ports = stack.Ports(api=_free_port(), sqs=_free_port(), whatsapp=_free_port())
    env = {
        **os.environ,
        "DATABASE_URL": migrated_db,
        "DEVSTACK_DIR": str(tmp_path / "devstack"),
        "PORT": str(ports.api),
        "SQS_PORT": str(ports.sqs),
        "WHATSAPP_PORT": str(ports.whatsapp),
    }
    command = [sys.executable, "-m", "devstack"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        output = []
        for line in process.stdout:
            output.append(line)
            if "ready in" in line:
                break
        assert process.poll() is None, "".join(output)
        yield f"http://{stack.HOST}:{ports.api}"
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((stack.HOST, 0))
        return int(probe.getsockname()[1])
