"""Every benchmark in one run: prints the table and writes bench/RESULTS.md.

Usage: python -m bench [--database-url URL] [--smoke] [--out PATH]

One PostgreSQL server for all (embedded unless ``--database-url``).  ``--smoke``
runs each benchmark with a few iterations and tiny row counts (what ``make test``
does, so that they never rot); its figures mean nothing.
"""

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _support, cold_start, gate, migrations, request_cost, scale, schema_drift, search, worker

FULL: dict[str, list[str]] = {
    "cold_start": [],
    "request_cost": [],
    "worker": [],
    "migrations": [],
    "gate": [],
    "scale": [],
    "schema_drift": [],
    "search": [],
}
SMOKE: dict[str, list[str]] = {
    "cold_start": ["--repeat", "1", "--no-zip"],
    "request_cost": ["--requests", "5", "--rows", "50"],
    "worker": ["--records", "20", "--traced-records", "10"],
    "migrations": ["--repeat", "2", "--rows", "2000", "--writer-warmup", "0.05"],
    "gate": ["--repeat", "2"],
    "scale": ["--rows", "2000", "--page", "5", "--requests", "5"],
    "schema_drift": ["--repeat", "2", "--scenarios", "3"],
    "search": ["--rows", "2000", "--requests", "3"],
}
MAINS: dict[str, Callable[[list[str]], dict[str, Any]]] = {
    "cold_start": cold_start.main,
    "request_cost": request_cost.main,
    "worker": worker.main,
    "migrations": migrations.main,
    "gate": gate.main,
    "scale": scale.main,
    "schema_drift": schema_drift.main,
    "search": search.main,
}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--database-url")
    parser.add_argument("--smoke", action="store_true", help="a few iterations and tiny tables: proves it runs")
    parser.add_argument("--out", type=Path, help="where to write the Markdown results (default: print only)")
    parser.add_argument("--only", action="append", choices=sorted(MAINS), help="run only these benchmarks")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    server = _support.server(args.database_url)
    extra = ["--database-url", server]
    results: dict[str, Any] = {}
    for name, arguments in (SMOKE if args.smoke else FULL).items():
        if args.only and name not in args.only:
            continue
        print(f"bench: {name} …", file=sys.stderr, flush=True)
        begun = time.perf_counter()
        try:
            results[name] = MAINS[name]([*arguments, *extra])
        except Exception as error:
            traceback.print_exc()
            results[name] = {"error": f"{type(error).__name__}: {error}", "targets": []}
        results[name]["seconds"] = round(time.perf_counter() - begun, 1)
    _support.forget_loaded()
    results["cost"] = cost_on_paper(results)
    results["seconds"] = round(time.perf_counter() - started, 1)
    table = render_table(results)
    print(table)
    if args.out:
        args.out.write_text(render_markdown(results, table, server, args))
        print(f"bench: wrote {args.out}", file=sys.stderr)
    return results


# Cost on paper -----------------------------------------------------------------------------

# Per registration carried through to customer_created (DESIGN.md's workflow).
API_WRITES = ["POST /registrations", "verify", "schedule-survey", "complete-survey", "approve", "create-customer"]
STAFF_READS = 4  # an assumption: a list page and a detail view at two of the staff steps
COLD_FRACTION = 0.01  # an assumption: 1 in 100 invocations starts a container
WHATSAPP_MS = 150.0  # an assumption: the Graph API's answer time seen from Lambda
PRICE_GB_S = 0.0000166667  # x86, the published on-demand price in us-east-1; Jakarta differs
PRICE_PER_M_REQUESTS = 0.20


def cost_on_paper(results: dict[str, Any]) -> dict[str, Any]:
    """Lambda GB-seconds and requests per 1,000,000 registrations, from the measured medians."""
    config = json.loads((_support.ROOT / ".chalice" / "config.json").read_text())
    default_mb = _memory_mb(config, "api_handler")
    worker_mb = _memory_mb(config, "customer_worker")
    requests = results.get("request_cost", {})
    work = results.get("worker", {})
    cold = results.get("cold_start", {}).get("source", {})
    if "POST /registrations" not in requests or "one_statement_worker" not in work:
        return {"error": "request_cost and worker figures are needed"}
    create = requests["POST /registrations"]
    move = requests["POST /registrations/{id}/schedule-survey"]
    read = requests["GET /registrations"]
    create_ms, move_ms, read_ms = (f["handler"]["median_ms"] for f in (create, move, read))
    create_db, move_db, read_db = (f["bare_sql"]["median_ms"] for f in (create, move, read))
    worker_ms = work["one_statement_worker"]["ms_per_record"]
    # (what, per registration, duration ms, of which in SQL ms, memory MB); billed in whole ms, rounded up.
    invocations = [
        ("POST /registrations (+ OTP to WhatsApp)", 1, create_ms + WHATSAPP_MS, create_db, default_mb),
        ("verify, schedule-survey, complete-survey, approve", 4, move_ms, move_db, default_mb),
        ("create-customer (+ SQS SendMessage, est. as a transition + 20 ms)", 1, move_ms + 20, move_db, default_mb),
        ("staff reads (list, detail)", STAFF_READS, read_ms, read_db, default_mb),
        ("customer_worker, 1 record a batch (+ welcome to WhatsApp)", 1, worker_ms + WHATSAPP_MS, worker_ms, worker_mb),
    ]
    cold_way = next((w for w in ("zip_compiled", "zip_as_built", "source") if w in results.get("cold_start", {})), "")
    cold = results.get("cold_start", {}).get(cold_way, {})
    cold_ms = max((f["median_ms"] for n, f in cold.items() if n.startswith("app:")), default=0.0)
    rows = []
    total_requests = total_gb_s = total_ms = total_db_ms = 0.0
    for label, per_registration, ms, db_ms, mb in invocations:
        count = per_registration * 1_000_000
        gb_s = count * math.ceil(ms) / 1000 * mb / 1024
        rows.append({"what": label, "requests": count, "billed_ms": math.ceil(ms), "memory_mb": mb, "gb_s": gb_s})
        total_requests += count
        total_gb_s += gb_s
        total_ms += count * ms
        total_db_ms += count * min(db_ms, ms)
    cold_gb_s = total_requests * COLD_FRACTION * math.ceil(cold_ms) / 1000 * default_mb / 1024
    total_gb_s += cold_gb_s
    # Of all the time the functions run, the share spent inside a statement: behind RDS Proxy a
    # container holds a database connection only then (not while it waits for WhatsApp).
    db_share = total_db_ms / total_ms if total_ms else 1.0
    return {
        "memory_mb": {"api": default_mb, "customer_worker": worker_mb, "migrate": _memory_mb(config, "migrate")},
        "rows": rows,
        "cold_starts": {"fraction": COLD_FRACTION, "init_plus_first_ms": cold_ms, "way": cold_way, "gb_s": cold_gb_s},
        "total_requests": total_requests,
        "total_gb_s": total_gb_s,
        "usd": total_gb_s * PRICE_GB_S + total_requests / 1_000_000 * PRICE_PER_M_REQUESTS,
        "db_time_share": round(db_share, 3),
        "connections": [
            {
                "concurrency": c,
                "direct": c + 2,
                # Behind the proxy the database sees a connection only while a transaction runs.
                "rds_proxy": math.ceil(c * db_share) + 2,
            }
            for c in (10, 100, 1000)
        ],
    }


def _memory_mb(config: dict[str, Any], function: str) -> int:
    """The prod stage's memory for ``function`` (.chalice/config.json), else the top level's, else Lambda's 128."""
    prod = config.get("stages", {}).get("prod", {}).get("lambda_functions", {}).get(function, {})
    return int(prod.get("lambda_memory_size") or config.get("lambda_memory_size", 128))


# Rendering ---------------------------------------------------------------------------------


def render_table(results: dict[str, Any]) -> str:
    lines = ["| figure | measured | target | met |", "|---|---|---|---|"]
    for name in MAINS:
        part = results.get(name)
        if part is None:
            continue
        if "error" in part:
            lines.append(f"| {name} | failed: {part['error'][:200]} | | no |")
        for row in part.get("targets", []):
            met = {True: "yes", False: "**no**", None: "n/a"}[row["met"]]
            lines.append(f"| {row['figure']} | {row['value']} | {row['target']} | {met} |")
    return "\n".join(lines)


def render_markdown(results: dict[str, Any], table: str, server: str, args: argparse.Namespace) -> str:
    command = "make bench" if not args.smoke else "python -m bench --smoke"
    out = [
        "# Benchmark results",
        "",
        f"Written by `{command}` (`python -m bench --out bench/RESULTS.md`) on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; the whole run took {results['seconds']:.0f} s.",
        "Figures are ratios measured side by side in one run (these machines are noisy); absolute",
        "times are reported, not targeted. The database is local (unix socket), so every figure",
        "leaves out the network between Lambda and RDS.",
        "",
        "## Targets",
        "",
        table,
        "",
        "## Machine and versions",
        "",
        *_machine(server),
        "",
    ]
    out += _details(results)
    out += _cost_markdown(results.get("cost", {}))
    return "\n".join(out) + "\n"


def _machine(server: str) -> list[str]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines() if "model name" in line), "?"
    )
    mem = next((line.split()[1] for line in _read("/proc/meminfo").splitlines() if line.startswith("MemTotal")), "0")
    versions = []
    for package in (
        "chalice",
        "psycopg",
        "pydantic",
        "PyJWT",
        "aws-lambda-powertools",
        "fastapi",
        "mangum",
        "yoyo-migrations",
    ):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    return [
        f"- machine: {platform.platform()}, {os.cpu_count()} CPUs ({cpu}), {int(mem) // 1024} MiB",
        f"- Python {platform.python_version()}; PostgreSQL {_support.server_version(server)}",
        f"- {', '.join(versions)}",
        f"- commit {_git('rev-parse', '--short', 'HEAD')}",
    ]


def _details(results: dict[str, Any]) -> list[str]:
    out = ["## Details", ""]
    cold = results.get("cold_start", {})
    for way, title in (
        ("source", "from the source tree (venv, bytecode cached)"),
        ("zip_as_built", "from the unpacked deployment zip as chalice built it, `python -B -S` (no .pyc)"),
        ("zip_compiled", "the same tree after `compileall --invalidation-mode unchecked-hash`, `python -B -S`"),
    ):
        if way in cold:
            out += [
                f"### Cold start, {title}",
                "",
                "| case | median ms | min ms | x its floor | CPU median ms | CPU x its floor |",
                "|---|---|---|---|---|---|",
            ]
            out += [
                f"| {n} | {f['median_ms']:.0f} | {f['min_ms']:.0f} | {f['x_floor']} | {f.get('cpu_median_ms', 0):.0f} "
                f"| {f.get('cpu_x_floor', '–')} |"
                for n, f in cold[way].items()
            ]
            out.append("")
    if "repeat" in cold:
        out += [f"{cold['repeat']} runs per case from source, {cold.get('zip_repeat', 0)} per zip case; medians.", ""]
    requests = results.get("request_cost", {})
    if "GET /registrations" in requests:
        out += [
            "### Request cost (in-process, warm, on one connection: our handler beside the framework floors)",
            "",
            "| request | ours median / p99 ms | Chalice floor ms | x Chalice floor | ours without the log line ms "
            "| x Chalice floor | Powertools floor ms | bare SQL ms | CPU µs: ours / no log line / Chalice / "
            "Powertools / bare | round trips |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, f in requests.items():
            if isinstance(f, dict) and "handler" in f:
                trips = f["round_trips_per_request"]
                cells = [f"{f['handler']['median_ms']:.3f} / {f['handler']['p99_ms']:.3f}"]
                for key in (
                    "chalice_floor",
                    "x_chalice_floor",
                    "handler_without_log_line",
                    "x_chalice_floor_without_log_line",
                    "powertools_floor",
                    "bare_sql",
                ):
                    value = f.get(key)
                    cells.append(f"{value['median_ms']:.3f}" if isinstance(value, dict) else str(value or "–"))
                cpu = f.get("cpu_us", {})
                parts = ("handler", "handler_without_log_line", "chalice_floor", "powertools_floor", "bare_sql")
                cells.append(" / ".join(f"{cpu[k]:.0f}" if k in cpu else "–" for k in parts) if cpu else "–")
                out.append(f"| {name} | {' | '.join(cells)} | {trips['median']} (max {trips['max']}) |")
        out += [
            "",
            "The floors (`bench/floors/request_floor.py`) answer the same event with the same statement on",
            "the same connection, the same status and body: the framework's routing, event and response,",
            "the body read by a plain pydantic model, the statement's parameters, the body as JSON. What",
            "our handler adds on top (the staff token, our validation, the request log line, the metrics",
            "line, `Cache-Control`): about "
            + ", ".join(
                f"{f['handler_overhead_ms']:.3f} ms ({name})"
                for name, f in requests.items()
                if isinstance(f, dict) and "handler_overhead_ms" in f
            )
            + ". The four are called in turn, request by request; CPU is this process's time per call",
            "(the server's is in none), less disturbed by a busy machine than wall time.",
            "",
            "With WhatsApp configured, POST /registrations sends the OTP after commit: the two extra",
            "round trips are the outbox row claimed and marked sent (`notifications.sender.send_now`).",
            "",
        ]
        notes = Path(__file__).with_name("request_cost_notes.md")
        if notes.exists():
            out += [notes.read_text().rstrip(), ""]
    work = results.get("worker", {})
    if "one_statement_worker" in work:
        out += [
            "### Worker",
            "",
            "| version | customers/s | ms per record | round trips per record |",
            "|---|---|---|---|",
        ]
        for name in ("one_statement_worker", "separate_statements"):
            f = work[name]
            out.append(f"| {name} | {f['customers_per_s']} | {f['ms_per_record']} | {f['round_trips_per_record']} |")
        out += ["", f"{work['records']} records in SQS batches of {work['batch']}, one connection.", ""]
    mig = results.get("migrations", {})
    if "constraint_fix" in mig:
        fix = mig["constraint_fix"]
        out += [
            "### Migrations",
            "",
            f"- apply on an empty database ({mig['migration_files']} files): ours "
            f"{mig['apply_empty_db']['ours_median_ms']:.0f} ms, yoyo-migrations on the same files "
            f"{mig['apply_empty_db']['yoyo_median_ms']:.0f} ms (median of {mig['apply_empty_db']['runs']})",
            f"- verify alone: {mig['verify']['median_ms']:.1f} ms median, p95 {mig['verify']['p95_ms']:.1f} ms, "
            f"round trips {mig['verify']['round_trips']}",
            f"- the incident's fix on {fix['rows']:,} rows, a writer inserting and updating in a loop:",
            "",
            "| way | statements ms | longest writer statement ms | writer statements during "
            "| writer median before ms |",
            "|---|---|---|---|---|",
        ]
        for way in ("seed_validating", "ours_not_valid_then_validate"):
            f = fix[way]
            out.append(
                f"| {way} | {', '.join(f'{s:.0f}' for s in f['statements_ms'])} | {f['writer_longest_ms']:.1f} | "
                f"{f['writer_statements_during']} | {f['writer_median_before_ms']} |"
            )
        out.append("")
    gate_figures = results.get("gate", {})
    if "nothing_pending" in gate_figures:
        none, one = gate_figures["nothing_pending"], gate_figures["one_file"]
        out += [
            "### Schema gate (a CloudFormation custom-resource request to `migrate`, answered by PUT)",
            "",
            "| case | median ms | p99 ms | n |",
            "|---|---|---|---|",
            f"| nothing pending | {none['median_ms']:.1f} | {none['p99_ms']:.1f} | {none['n']} |",
            f"| one file to apply | {one['median_ms']:.1f} | {one['p99_ms']:.1f} | {one['n']} |",
            f"| (apply alone, the same file) | {gate_figures['plain_apply_one_file_median_ms']:.1f} | | |",
            "",
            "End to end through the handler: connection, lock, plan, then verify (nothing pending) or the",
            "rehearsal, both contracts, apply and verify (a file), and the PUT to a loopback server; each",
            "one-file run on a fresh copy of a migrated database.",
            "",
        ]
    big = results.get("scale", {})
    if "plans" in big:
        out += ["### Scale", "", "| request | median ms | p99 ms | n |", "|---|---|---|---|"]
        for name, f in big.items():
            if isinstance(f, dict) and "median_ms" in f:
                out.append(f"| {name} | {f['median_ms']:.2f} | {f['p99_ms']:.2f} | {f['n']} |")
        out += ["", "Plans of the list statement:", ""]
        for name, plan in big["plans"].items():
            out += [f"{name}:", "", "```", plan, "```", ""]
    found = results.get("search", {})
    if "plans" in found:
        out += [
            f"### Staff search at {found['rows']:,} rows",
            "",
            f"Migration 010's indexes built after the load in {found['index_build_s']} s (CONCURRENTLY).",
            "",
            "| request | median ms | p95 ms | n |",
            "|---|---|---|---|",
        ]
        for name, f in found.items():
            if isinstance(f, dict) and "p95_ms" in f:
                out.append(f"| {name} | {f['median_ms']:.2f} | {f['p95_ms']:.2f} | {f['n']} |")
        out += ["", "Plans (EXPLAIN ANALYZE, the request's values):", ""]
        for name, plan in found["plans"].items():
            out += [f"{name}:", "", "```", plan, "```", ""]
    if "table" in results.get("schema_drift", {}):
        out += schema_drift.render(results["schema_drift"])
    return out


def _cost_markdown(cost: dict[str, Any]) -> list[str]:
    if "rows" not in cost:
        return ["## Cost on paper", "", f"Not computed: {cost.get('error')}", ""]
    out = [
        "## Cost on paper: per 1,000,000 registrations carried through to customer_created",
        "",
        "Memory: " + ", ".join(f"{name} {mb} MB" for name, mb in cost["memory_mb"].items()) + ".",
        "Durations are the warm medians above (local database), billed",
        f"in whole milliseconds; WhatsApp's answer is assumed to take {WHATSAPP_MS:.0f} ms, and the staff",
        f"are assumed to read {STAFF_READS} times per registration.",
        "",
        "| invocations | requests | billed ms each | MB | GB-s |",
        "|---|---|---|---|---|",
    ]
    for row in cost["rows"]:
        out.append(
            f"| {row['what']} | {row['requests']:,.0f} | {row['billed_ms']} | {row['memory_mb']} | {row['gb_s']:,.0f} |"
        )
    cold = cost["cold_starts"]
    out += [
        f"| cold starts ({cold['fraction']:.0%} of invocations, INIT + first {cold['init_plus_first_ms']:.0f} ms, "
        f"{cold['way']}) "
        f"| | | | {cold['gb_s']:,.0f} |",
        f"| **total** | **{cost['total_requests']:,.0f}** | | | **{cost['total_gb_s']:,.0f}** |",
        "",
        f"About ${cost['usd']:,.2f} at the published x86 on-demand prices of us-east-1 "
        f"(${PRICE_GB_S} per GB-s, ${PRICE_PER_M_REQUESTS} per million requests; ap-southeast-3 differs).",
        "The WhatsApp wait dominates the create and worker invocations; the scheduled `send_notifications`",
        "adds 43,200 small invocations a month whatever the traffic, and `migrate` one per deploy (512 MB).",
        "",
        "### Database connections at a given Lambda concurrency",
        "",
        "Every warm container keeps one connection. Directly, the database sees one per container",
        "(plus `send_notifications` and a deploy's `migrate`), whatever it is doing. Behind RDS Proxy",
        "it sees one only while a statement or transaction runs: about concurrency x "
        f"{cost['db_time_share']} (the share",
        "of the functions' time spent in SQL with this request mix, from the figures above; the",
        "WhatsApp waits are most of the rest), plus two. Over a network the SQL share grows.",
        "Behind the proxy set `DB_PREPARED_STATEMENTS=0`, or prepared statements pin each client",
        "to its own database connection and the saving is gone.",
        "",
        "| concurrency (API + worker) | connections, direct | connections, RDS Proxy |",
        "|---|---|---|",
    ]
    out += [f"| {c['concurrency']} | {c['direct']} | {c['rds_proxy']} |" for c in cost["connections"]]
    out.append("")
    return out


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=_support.ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip() or "?"


if __name__ == "__main__":
    main()
