"""Metrics as CloudWatch Embedded Metric Format (EMF): one JSON log line per invocation.

No API call and nothing beyond the standard library: CloudWatch Logs turns the line
into metrics in the namespace ``RegistrationBackend``, dimension ``Stage``.  Like
logging, recording is ambient: code anywhere records into the invocation that is
running, and the entry point writes the line when the invocation ends::

    with emf.invocation("customer_worker"):       # the entry point (app.py)
        emf.count("CustomerCreated")               # anywhere below it
        emf.count("WorkerRecordFailed", by="bad_body")
        emf.timing("WhatsAppLatency", 183.2)

Outside an invocation (a test calling a service, a CLI) recording does nothing.
Locally (``make run``, ``EMF_OUTPUT=summary``) each line is printed as a one-line
summary instead: ``metrics customer_worker [local] CustomerCreated=1 …``.

Why ``by`` is part of the metric name and not a second dimension: an EMF document
carries one value per dimension, and the worker's batch (or the sender's run) can
fail records for two reasons at once; two reasons would need two lines.  So
``count("WorkerRecordFailed", by="bad_body")`` adds to ``WorkerRecordFailed`` (the
total, which the alarm watches) and to ``WorkerRecordFailed.bad_body`` (the
dashboard's breakdown), both in the one line.
"""

import contextlib
import contextvars
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

NAMESPACE = "RegistrationBackend"
# An EMF metric holds at most 100 values; more samples than that are summarised.
MAX_VALUES = 100

Unit = Literal["Count", "Milliseconds", "Seconds", "Percent", "None"]
Writer = Callable[[str], None]


class Metrics:
    """What one invocation recorded; ``line()`` is its EMF document (None when empty)."""

    def __init__(self, function: str, stage: str, properties: dict[str, Any] | None = None) -> None:
        self.function = function
        self.stage = stage
        self.properties: dict[str, Any] = dict(properties or {})
        self._units: dict[str, Unit] = {}
        self._values: dict[str, list[float]] = {}

    def count(self, name: str, value: float = 1, *, by: str | None = None) -> None:
        """Add ``value`` to the counter ``name`` (and to ``name.by`` when given)."""
        for metric in (name, f"{name}.{by}") if by else (name,):
            self._add(metric, value, "Count", summed=True)

    def timing(self, name: str, milliseconds: float) -> None:
        """One sample of the duration ``name``, in milliseconds (each sample kept, for percentiles)."""
        self._add(name, round(milliseconds, 3), "Milliseconds", summed=False)

    def gauge(self, name: str, value: float, unit: Unit = "None") -> None:
        """One sample of the level ``name`` (each sample kept, like a timing)."""
        self._add(name, value, unit, summed=False)

    def names(self) -> set[str]:
        return set(self._values)

    def line(self) -> str | None:
        """The EMF JSON document for everything recorded, or None when nothing was."""
        if not self._values:
            return None
        document: dict[str, Any] = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": NAMESPACE,
                        "Dimensions": [["Stage"]],
                        "Metrics": [{"Name": name, "Unit": self._units[name]} for name in sorted(self._values)],
                    }
                ],
            },
            "Stage": self.stage,
            "function": self.function,
            **self.properties,
        }
        for name, values in self._values.items():
            document[name] = values[0] if len(values) == 1 else values[:MAX_VALUES]
        return _ENCODER.encode(document)

    def _add(self, name: str, value: float, unit: Unit, *, summed: bool) -> None:
        if not math.isfinite(value):
            return
        known = self._units.setdefault(name, unit)
        if known != unit:
            raise ValueError(f"metric {name} is recorded in {known}, not {unit}")
        values = self._values.setdefault(name, [])
        if summed and values:
            values[0] += value
        else:
            values.append(value)


# One encoder for every line (``json.dumps`` with options builds a new one per call).
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)

_current: contextvars.ContextVar[Metrics | None] = contextvars.ContextVar("emf_metrics", default=None)


def stage() -> str:
    """The ``Stage`` dimension: ``STAGE`` from the environment (set per stage in ``.chalice/config.json``)."""
    return os.environ.get("STAGE") or "local"


def count(name: str, value: float = 1, *, by: str | None = None) -> None:
    """``Metrics.count`` on the current invocation; nothing outside one."""
    metrics = _current.get()
    if metrics is not None:
        metrics.count(name, value, by=by)


def timing(name: str, milliseconds: float) -> None:
    """``Metrics.timing`` on the current invocation; nothing outside one."""
    metrics = _current.get()
    if metrics is not None:
        metrics.timing(name, milliseconds)


def gauge(name: str, value: float, unit: Unit = "None") -> None:
    """``Metrics.gauge`` on the current invocation; nothing outside one."""
    metrics = _current.get()
    if metrics is not None:
        metrics.gauge(name, value, unit)


def set_property(key: str, value: Any) -> None:
    """A non-metric field on the invocation's line (e.g. ``correlation_id``); nothing outside one, or for None."""
    metrics = _current.get()
    if metrics is not None and value is not None:
        metrics.properties[key] = value


def current() -> Metrics | None:
    return _current.get()


@contextlib.contextmanager
def invocation(function: str, *, write: Writer | None = None, **properties: Any) -> Iterator[Metrics]:
    """Record what runs inside into a fresh ``Metrics``; write its one line at the end, raise or not.

    ``write`` takes the line (default: standard output, which Lambda sends to
    CloudWatch Logs).  An invocation inside another records into the outer one.
    """
    outer = _current.get()
    if outer is not None:
        yield outer
        return
    metrics = Metrics(function, stage(), properties)
    token = _current.set(metrics)
    try:
        yield metrics
    finally:
        _current.reset(token)
        line = metrics.line()
        if line is not None:
            (write or _stdout)(line)


def _stdout(line: str) -> None:
    # `make run` sets EMF_OUTPUT=summary: a person reads these lines, not CloudWatch.
    if os.environ.get("EMF_OUTPUT") == "summary":
        line = summary(json.loads(line))
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def parse(text: str) -> list[dict[str, Any]]:
    """The EMF documents among ``text``'s lines (any other line is skipped): for tests and devstack."""
    documents = []
    for raw in text.splitlines():
        raw = raw.strip()
        if not raw.startswith("{") or '"_aws"' not in raw:
            continue
        try:
            document = json.loads(raw)
        except ValueError:
            continue
        if isinstance(document, dict) and isinstance(document.get("_aws"), dict):
            documents.append(document)
    return documents


def summary(document: dict[str, Any]) -> str:
    """One readable line for an EMF document: ``customer_worker [local] CustomerCreated=1 ...``."""
    names = [m["Name"] for directive in document["_aws"]["CloudWatchMetrics"] for m in directive["Metrics"]]
    parts = []
    for name in names:
        value = document.get(name)
        if isinstance(value, list):
            parts.append(f"{name}=[{', '.join(f'{v:g}' for v in value)}]")
        else:
            parts.append(f"{name}={value:g}" if isinstance(value, int | float) else f"{name}={value}")
    where = f"{document.get('function', '?')} [{document.get('Stage', '?')}]"
    ids = document.get("correlation_id")
    correlation = f" correlation_id={','.join(ids) if isinstance(ids, list) else ids}" if ids else ""
    return f"metrics {where} {' '.join(parts)}{correlation}"
