"""`python -m devstack` (what `make run` runs) in a subprocess on free ports, for tests that drive the whole stack."""

import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from devstack import stack

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((stack.HOST, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class RunningStack:
    process: "subprocess.Popen[str]"
    ports: stack.Ports

    @property
    def api_url(self) -> str:
        return f"http://{stack.HOST}:{self.ports.api}"


def start(database_url: str, workdir: Path) -> RunningStack:
    """The stack on ``database_url``, its state in ``workdir``, once it printed that it is ready."""
    ports = stack.Ports(api=free_port(), sqs=free_port(), whatsapp=free_port())
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEVSTACK_DIR": str(workdir),
        "PORT": str(ports.api),
        "SQS_PORT": str(ports.sqs),
        "WHATSAPP_PORT": str(ports.whatsapp),
    }
    command = [sys.executable, "-m", "devstack"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    running = RunningStack(process, ports)
    if process.stdout is None:
        raise RuntimeError("the stack's output is not piped")
    output = []
    for line in process.stdout:
        output.append(line)
        if "ready in" in line:
            break
    if process.poll() is not None:
        stop(running)
        raise AssertionError("".join(output))
    return running


def stop(running: RunningStack) -> str:
    """Ctrl-C, as a person stops `make run`; what it printed after it was ready."""
    running.process.send_signal(signal.SIGINT)
    rest, _ = running.process.communicate(timeout=30)
    return rest
