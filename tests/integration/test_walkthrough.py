"""The README's walk-through, executed: every ``sh`` block of its "Walk-through" section, in order,
in one bash, against `make run`'s stack (``python -m devstack`` on free ports), each curl call's
status and body checked against the answer the README shows after ``# →``.

A block right after ``<!-- illustration -->`` is not run.  The walk-through breaks here the day it
would break for a reader (a date in the past, a route renamed, a body refused).
"""

import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.support import devstack_process

ILLUSTRATION = "<!-- illustration -->"
EXPECTED = re.compile(r"#\s*→\s*(\d{3})(?:\s+(\S+))?")
# Stands first in PATH as `curl`: runs the real one, and logs each call's status and body (one line).
CURL_SHIM = """#!/bin/bash
body=$(mktemp)
"$REAL_CURL" -o "$body" -w '%{http_code}' "$@" > "$body.status"
rc=$?
{ cat "$body.status"; printf ' '; tr '\\n' ' ' < "$body"; echo; } >> "$WALK_LOG"
cat "$body"
rm -f "$body" "$body.status"
exit $rc
"""


@dataclass(frozen=True)
class Call:
    """One curl line of the README: the status it shows, and a word its answer holds."""

    line: str
    status: int | None
    word: str | None


def walkthrough_blocks(readme: str) -> list[str]:
    """The ``sh`` blocks of the section, in order, illustrations left out."""
    section = readme.split("\n## Walk-through\n", 1)[1].split("\n## ", 1)[0]
    blocks = []
    for match in re.finditer(r"(?P<before>[^\n]*)\n```sh\n(?P<body>.*?)```", section, re.S):
        if match.group("before").strip() != ILLUSTRATION:
            blocks.append(match.group("body"))
    return blocks


def curl_calls(blocks: list[str]) -> list[Call]:
    """Each logical line (continuations joined) that runs curl once, with what it should answer."""
    calls = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            code = line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
            if "curl " not in code:
                continue
            expected = EXPECTED.search(line)
            status = int(expected.group(1)) if expected else None
            calls.append(Call(line.strip(), status, expected.group(2) if expected else None))
    return calls


def test_the_section_is_found_and_every_block_is_a_run_or_an_illustration() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = walkthrough_blocks(readme)
    assert len(blocks) >= 4, "the README has no walk-through"
    section = readme.split("\n## Walk-through\n", 1)[1].split("\n## ", 1)[0]
    fences = re.findall(r"^```(\w*)$", section, re.M)
    assert set(fences[::2]) == {"sh"}, f"walk-through blocks are sh (or marked illustrations): {fences}"
    calls = curl_calls(blocks)
    assert sum(call.status is not None for call in calls) >= 8, "most steps show their expected answer"
    assert not re.search(r"20\d\d-\d\d-\d\dT", section), "dates in the walk-through are relative (date -d)"


@pytest.mark.slow
def test_every_block_of_the_walkthrough_runs_against_the_stack(migrated_db: str, tmp_path: Path) -> None:
    real_curl, bash = shutil.which("curl"), shutil.which("bash")
    if real_curl is None or bash is None:
        pytest.skip("the walk-through needs curl and bash")
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "curl").write_text(CURL_SHIM)
    (shims / "curl").chmod(stat.S_IRWXU)
    log = tmp_path / "calls.log"
    blocks = walkthrough_blocks((ROOT / "README.md").read_text())
    script = "set -euo pipefail\n" + "".join(f"echo '--- block {i}'\n{b}" for i, b in enumerate(blocks, 1))

    running = devstack_process.start(migrated_db, tmp_path / "stack")
    try:
        env = {
            **os.environ,
            "PATH": f"{shims}:{os.environ['PATH']}",
            "REAL_CURL": real_curl,
            "WALK_LOG": str(log),
            "DEVSTACK_DIR": str(tmp_path / "stack"),
            "PORT": str(running.ports.api),
            "SQS_PORT": str(running.ports.sqs),
            "WHATSAPP_PORT": str(running.ports.whatsapp),
        }
        env.pop("AUTH_JWT_SECRET", None)  # the key make run keeps in DEVSTACK_DIR, as a reader has
        result = subprocess.run(
            [bash, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
        )
    finally:
        devstack_process.stop(running)

    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    answers = log.read_text().splitlines()
    calls = curl_calls(blocks)
    # An `until` loop may call its curl more than once: those answers are not steps.
    loops = [c for c in calls if c.line.startswith("until ")]
    assert len(loops) <= 1, "one polling loop at most: its answers are counted as the rest"
    polls = len(answers) - len(calls) + 1
    answered = iter(answers)
    for call in calls:
        repeats = polls if call.line.startswith("until ") else 1
        got = [next(answered) for _ in range(repeats)]
        status, _, body = got[-1].partition(" ")
        if call.status is None:
            assert status.startswith("2"), f"{call.line}\n→ {got[-1]}"
        else:
            assert int(status) == call.status, f"{call.line}\n→ {got[-1]}"
            if call.word:
                assert call.word in body, f"{call.line}\n→ {got[-1]}"
