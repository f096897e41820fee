"""Cold start as a user waits for it: a fresh interpreter, INIT plus the first invocation.

Usage: python bench/cold_start.py [--database-url URL] [--repeat N] [--zip-repeat N] [--no-zip] [--xray]

For each function (the API answering ``GET /packages``, the worker handling one
record, ``migrate`` verifying) a new ``python`` process imports the handler's module
and calls it once with a Lambda-shaped event and a fake context; the time runs from
before the process is spawned until it exits right after writing the response.
Beside each runs the floor for that job (``bench/floors/chalice_floor.py``), and for
the API the same floor on Powertools and on FastAPI + Mangum.  Runs are interleaved
round-robin so that the machine's noise falls on every case alike; figures are medians.
``--xray`` runs every case with the environment Lambda gives a function under X-Ray
active tracing (``XRAY_ENV``): what tracing changes inside the process, which is all
that can be measured off AWS.

Three ways: from the source tree (the venv, bytecode cached), and from the unpacked
``chalice package`` zip with ``python -B -S`` as Lambda runs it: as chalice built it
(no .pyc files), and the same tree after ``compileall --invalidation-mode unchecked-hash``.
"""

import argparse
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _support

FLOORS = _support.ROOT / "bench" / "floors"
TARGET = 1.0
# What Lambda adds to a function's environment under active tracing (the trace header
# changes per invocation).  Nothing of ours reads it; botocore forwards the trace id to
# SQS, which is how the worker's trace joins the API's without the X-Ray SDK.
XRAY_ENV = {
    "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
    "_AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129",
    "_AWS_XRAY_DAEMON_PORT": "2000",
}

# The child: read the event, import the handler's module, call it once, answer, exit at once.
_CHILD = """
import os, sys, json
event = json.loads(os.environ["BENCH_EVENT"])
class Context:
    aws_request_id = "cold-start"
    function_name = "bench"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:ap-southeast-3:123456789012:function:bench"
    def get_remaining_time_in_millis(self):
        return 30000
import {module} as m
answer = m.{handler}(event, Context())
sys.stdout.write(json.dumps(answer, default=str))
sys.stdout.flush()
os._exit(0)
"""


@dataclass(frozen=True)
class Case:
    name: str
    function: str  # api, worker, migrate
    module: str
    handler: str
    floor: bool
    peer: bool = False  # needs packages the deployment zip does not carry
    requires: tuple[str, ...] = ()


CASES = [
    Case("app: API GET /packages", "api", "app", "app", floor=False),
    Case("app: worker, one record", "worker", "app", "customer_worker", floor=False),
    Case("app: migrate verify", "migrate", "app", "migrate", floor=False),
    Case("floor: Chalice route", "api", "chalice_floor", "app", floor=True),
    Case("floor: Chalice SQS handler", "worker", "chalice_floor", "customer_worker", floor=True),
    Case("floor: Chalice function", "migrate", "chalice_floor", "migrate", floor=True),
    Case(
        "peer: Powertools APIGatewayRestResolver",
        "api",
        "powertools_floor",
        "handler",
        floor=True,
        peer=True,
        requires=("aws_lambda_powertools",),
    ),
    Case(
        "peer: FastAPI + Mangum",
        "api",
        "fastapi_floor",
        "handler",
        floor=True,
        peer=True,
        requires=("fastapi", "mangum"),
    ),
]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--repeat", type=int, default=25)
    parser.add_argument("--zip-repeat", type=int, default=15)
    parser.add_argument("--no-zip", action="store_true", help="skip the deployment-zip measurements")
    parser.add_argument("--xray", action="store_true", help="run with the environment of X-Ray active tracing")
    args = parser.parse_args(argv)
    server = _support.server(args.database_url)
    with _support.database(server) as url:
        # One per worker run: the app's and the floor's, a warm-up round each way.
        needed = 2 * (args.repeat + 2 * args.zip_repeat + 3) + 10
        approved = iter(_support.seed_registrations(url, needed, "approved"))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DATABASE_URL": url,
            "AUTH_JWT_SECRET": _support.JWT_SECRET,
            "OTP_HASH_KEY": _support.OTP_KEY,
            "AWS_DEFAULT_REGION": "ap-southeast-3",
            **(XRAY_ENV if args.xray else {}),
        }
        source = {case: (_support.ROOT if case.module == "app" else FLOORS) for case in CASES}
        # The peers are measured only where their packages are installed (requirements-bench.txt).
        cases = [case for case in CASES if all(importlib.util.find_spec(name) for name in case.requires)]
        result: dict[str, Any] = {"repeat": args.repeat, "python": sys.version.split()[0], "xray": args.xray}
        result["source"] = _measure(cases, source, [sys.executable], env, args.repeat, approved)
        if not args.no_zip:
            with tempfile.TemporaryDirectory(prefix="bench-zip-") as tmp:
                task, compiled = _unpacked_zip(Path(tmp))
                zip_cases = [case for case in cases if not case.peer]
                python = [sys.executable, "-B", "-S"]
                result["zip_repeat"] = args.zip_repeat
                result["zip_as_built"] = _measure(
                    zip_cases, dict.fromkeys(zip_cases, task), python, env, args.zip_repeat, approved
                )
                result["zip_compiled"] = _measure(
                    zip_cases, dict.fromkeys(zip_cases, compiled), python, env, args.zip_repeat, approved
                )
    result["targets"] = _targets(result)
    return result


def _measure(
    cases: list[Case], cwd_by_case: dict[Case, Path], python: list[str], env: dict[str, str], repeat: int, ids: Any
) -> dict[str, Any]:
    """Median wall time per case, runs interleaved; one unmeasured run each first (fills caches).

    Beside it, the child's CPU time (user + system): on a machine shared with other
    work the wall time waits for the CPU, the CPU time much less so.
    """
    samples: dict[str, list[float]] = {case.name: [] for case in cases}
    cpu: dict[str, list[float]] = {case.name: [] for case in cases}
    warmup = 1 if repeat > 1 else 0
    for round_ in range(repeat + warmup):
        for case in cases:
            seconds, cpu_seconds = _run(case, cwd_by_case[case], python, env, ids)
            if round_ >= warmup:
                samples[case.name].append(seconds)
                cpu[case.name].append(cpu_seconds)
    medians = {name: _support.ms(statistics.median(values)) for name, values in samples.items()}
    cpu_medians = {name: _support.ms(statistics.median(values)) for name, values in cpu.items()}
    floor_by_function = {case.function: medians[case.name] for case in cases if case.floor and not case.peer}
    cpu_floor_by_function = {case.function: cpu_medians[case.name] for case in cases if case.floor and not case.peer}
    return {
        case.name: {
            "median_ms": medians[case.name],
            "min_ms": _support.ms(min(samples[case.name])),
            "x_floor": _support.ratio(medians[case.name], floor_by_function[case.function]),
            "cpu_median_ms": cpu_medians[case.name],
            "cpu_x_floor": _support.ratio(cpu_medians[case.name], cpu_floor_by_function[case.function]),
        }
        for case in cases
    }


def _run(case: Case, cwd: Path, python: list[str], env: dict[str, str], ids: Any) -> tuple[float, float]:
    """The wall time and the child's CPU time, in seconds."""
    if case.function == "api":
        event = _support.api_event("GET", "/packages", "/packages")
    elif case.function == "worker":
        event = _support.sqs_event(_support.create_customer_body(next(ids)))
    else:
        event = {"action": "verify"}
    code = _CHILD.format(module=case.module, handler=case.handler)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [*python, "-c", code],
        cwd=cwd,
        env={**env, "BENCH_EVENT": json.dumps(event)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    _check(case, done)
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _check(case: Case, done: subprocess.CompletedProcess[str]) -> None:
    if done.returncode != 0:
        raise RuntimeError(f"{case.name} failed: {done.stderr[-2000:]}")
    # The handler's answer is the last line; before it, at most the invocation's one EMF metrics line.
    *before, last = done.stdout.splitlines() or [""]
    if len(before) > 1 or any('"_aws"' not in line for line in before):
        raise RuntimeError(f"{case.name}: more than one metrics line before the answer: {before!r}")
    answer = json.loads(last) if last.startswith(("{", "[")) else None
    ok = (
        (case.function == "api" and (answer or {}).get("statusCode") == 200)
        or (case.function == "worker" and answer == {"batchItemFailures": []})
        or (case.function == "migrate" and (answer or {}).get("ok") is True)
    )
    if not ok:
        raise RuntimeError(f"{case.name} answered {done.stdout[:300]!r}; {done.stderr[-1000:]}")


def _unpacked_zip(tmp: Path) -> tuple[Path, Path]:
    """The deployment zip unpacked as Lambda unpacks it, and a copy compiled to unchecked-hash .pyc."""
    out = tmp / "package"
    chalice = Path(sys.executable).parent / "chalice"
    subprocess.run(
        [str(chalice), "package", "--stage", "dev", str(out)],
        cwd=_support.ROOT,
        env={**os.environ, "AWS_DEFAULT_REGION": "ap-southeast-3"},
        check=True,
        capture_output=True,
        timeout=600,
    )
    task = tmp / "task"
    with zipfile.ZipFile(out / "deployment.zip") as archive:
        archive.extractall(task)
    shutil.copy(FLOORS / "chalice_floor.py", task)
    compiled = tmp / "compiled"
    shutil.copytree(task, compiled)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(compiled)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return task, compiled


def _targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for way in ("source", "zip_as_built", "zip_compiled"):
        for name, figures in result.get(way, {}).items():
            if name.startswith("app:"):
                rows.append(
                    {
                        "figure": f"cold start, {way}: {name.removeprefix('app: ')}",
                        "value": f"{figures['median_ms']:.0f} ms = {figures['x_floor']} x floor",
                        "target": f"<= {TARGET} x floor",
                        "met": figures["x_floor"] <= TARGET,
                    }
                )
    return rows


if __name__ == "__main__":
    _support.write_json(main())
