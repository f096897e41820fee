"""The walk of one custom-resource event through ``chalicelib/migrate``, followed as data.

Usage: python bench/migrate_walk.py [--database-url URL]

Counts, for one ``Update`` request with nothing pending (the gate's commonest
case) and one with a file to apply, how often the call stack crosses from one
module of ``chalicelib/migrate`` into another ("rooms entered"), how many of
those calls go back into a module that is already further down the stack
("returns": A calls B, which calls A again, the shape of an import cycle), and
which modules it visits.  Calls into the leaf value modules (the report's
dataclasses, the predicate reader) are counted apart, as they are many and flat;
"private_reaches" are calls into another module's ``_private`` function.  Also the package's size: modules and
lines.  The figures describe the code's shape, not its speed: the lower, the
fewer places a reader has to keep in mind to follow one event.
"""

import argparse
import io
import shutil
import sys
import tempfile
import threading
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from types import FrameType
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _support
from bench.gate import MIGRATIONS, PROBE, _Answers, _Context, _copy, _request
from chalicelib.migrate import custom_resource
from chalicelib.platform.settings import Settings

PACKAGE = _support.ROOT / "chalicelib" / "migrate"
PREFIX = "chalicelib.migrate"
LEAVES = {"report", "predicate"}


def size() -> dict[str, int]:
    files = sorted(PACKAGE.rglob("*.py"))
    return {"modules": len(files), "lines": sum(len(f.read_text().splitlines()) for f in files)}


class _Walk:
    """A profile hook: a call whose caller sits in another migrate module enters a room."""

    def __init__(self) -> None:
        self.entered = 0
        self.leaf_calls = 0
        self.private = 0
        self.returns = 0
        self.crossings: Counter[tuple[str, str]] = Counter()
        self.rooms: set[str] = set()

    def __call__(self, frame: FrameType, event: str, _arg: Any) -> None:
        if event not in ("call", "return"):
            return
        here = frame.f_globals.get("__name__", "")
        caller = frame.f_back.f_globals.get("__name__", "") if frame.f_back else ""
        if not here.startswith(PREFIX) or not caller.startswith(PREFIX) or here == caller:
            return
        if frame.f_code.co_name.startswith("<"):  # comprehensions, lambdas, module bodies
            return
        if event != "call":
            return
        self.rooms.update((caller, here))
        if here.rsplit(".", 1)[-1] in LEAVES:
            self.leaf_calls += 1
            return
        self.entered += 1
        name = frame.f_code.co_name
        self.private += name.startswith("_") and not name.startswith("__")
        self.crossings[(caller, here)] += 1
        below = frame.f_back.f_back if frame.f_back else None
        while below is not None:
            if below.f_globals.get("__name__") == here:
                self.returns += 1
                break
            below = below.f_back


def walk(url: str, migrations: Path, answers: _Answers) -> dict[str, Any]:
    hook = _Walk()
    threading.setprofile(hook)  # the gate's work runs in a thread
    sys.setprofile(hook)
    try:
        with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            answer = custom_resource.handle(
                _request(answers), _Context(), migrations_dir=migrations, database_url=url, settings=Settings()
            )
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    short = {
        f"{a.removeprefix(PREFIX + '.')} -> {b.removeprefix(PREFIX + '.')}": n for (a, b), n in hook.crossings.items()
    }
    return {
        "rooms_entered": hook.entered,
        "returns": hook.returns,
        "leaf_calls": hook.leaf_calls,
        "private_reaches": hook.private,
        "modules_visited": len(hook.rooms),
        "crossings": dict(sorted(short.items())),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    args = parser.parse_args(argv)
    server = _support.server(args.database_url)
    answers = _Answers()
    scratch = Path(tempfile.mkdtemp(prefix="bench-walk-"))
    try:
        with_file = scratch / "migrations"
        shutil.copytree(MIGRATIONS, with_file)
        (with_file / PROBE[0]).write_text(PROBE[1])
        with _support.database(server) as template:
            nothing = walk(template, MIGRATIONS, answers)
            url = _copy(server, template)
            try:
                one_file = walk(url, with_file, answers)
            finally:
                _support.drop_db(server, url)
    finally:
        answers.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return {"size": size(), "nothing_pending": nothing, "one_file": one_file}


if __name__ == "__main__":
    _support.write_json(main())
