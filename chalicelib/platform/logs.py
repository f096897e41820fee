"""Logs as one JSON object per line, with phone numbers and e-mail addresses masked.

Masking happens where a record is made (``logging.setLogRecordFactory``), so it
covers every logger and every handler, third-party messages and tracebacks
included (a psycopg ``UniqueViolation`` names the duplicate value, for one).
There too every record gets the ``correlation_id`` of the work in hand (``correlated``):
the API request's id, carried to the worker and the sender of its messages.
"""

import contextlib
import contextvars
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# Anything that looks like a phone number: 9 or more digits, maybe with a leading
# +, spaces, dots or dashes between them.  UUIDs and timestamps don't match
# (their digit runs are broken by letters, colons, or are too short).
_PHONE = re.compile(r"(?<![\w-])\+?\d(?:[\s.-]?\d){8,14}(?![\w-])")
# Either of them, in one scan: most strings hold neither and need no more work.
_EMAIL_OR_PHONE = re.compile(f"{_EMAIL.pattern}|{_PHONE.pattern}")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


_correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)


def correlation_id() -> str | None:
    """The correlation id of the work in hand (None outside ``correlated``)."""
    return _correlation_id.get()


@contextlib.contextmanager
def correlated(correlation_id: str | None) -> Iterator[None]:
    """Every log record made inside carries ``correlation_id`` (unchanged when it is None)."""
    if correlation_id is None:
        yield
        return
    token = _correlation_id.set(correlation_id)
    try:
        yield
    finally:
        _correlation_id.reset(token)


def mask(text: str) -> str:
    """``text`` with e-mail addresses as ``s***@example.com`` and phone numbers as ``+6281******90``."""
    if "@" not in text:
        # No e-mail address without an @, and the phone pattern alone scans much faster than
        # both together (request ids and routes, on every request's log line, hold neither).
        return _PHONE.sub(_mask_phone, text) if _PHONE.search(text) else text
    if not _EMAIL_OR_PHONE.search(text):
        return text
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _PHONE.sub(_mask_phone, text)


def _mask_phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    plus = "+" if match.group(0).startswith("+") else ""
    return plus + digits[:4] + "*" * (len(digits) - 6) + digits[-2:]


def _masked(value: Any) -> Any:
    """``value`` with every string inside it masked: an ``extra`` list or dict may hold a phone number too."""
    if isinstance(value, str):
        return mask(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {str(k): _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_masked(v) for v in value]
    return mask(str(value))


# One encoder for every line (``json.dumps`` with options builds a new one per call), and the
# line's time to the second formatted once per second: every request writes a line.
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)
_second: tuple[int, str] = (-1, "")


def _utc_second(created: float) -> str:
    global _second
    whole = int(created)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return _second[1]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": f"{_utc_second(record.created)}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = _masked(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = mask(self.formatException(record.exc_info))
        if record.exc_text:
            entry["exception"] = record.exc_text
        return _ENCODER.encode(entry)


class _MaskingRecordFactory:
    """Wraps the record factory it found: every record's message and traceback come out masked."""

    def __init__(self, make_record: Callable[..., logging.LogRecord]) -> None:
        self._make_record = make_record

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self._make_record(*args, **kwargs)
        record.msg, record.args = mask(record.getMessage()), None
        if (current := _correlation_id.get()) is not None:
            record.correlation_id = current
        if record.exc_info:
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
        return record


def configure(level: int = logging.INFO) -> None:
    """Mask every record and format the process's log lines as JSON; idempotent.

    Whether it was done is the logging module's own state (its record factory), so
    no flag of ours has to be kept or reset.
    """
    if isinstance(logging.getLogRecordFactory(), _MaskingRecordFactory):
        return
    logging.setLogRecordFactory(_MaskingRecordFactory(logging.getLogRecordFactory()))
    root = logging.getLogger()
    root.setLevel(level)
    # Lambda's runtime gives the root logger its handler; pytest adds its own, which we leave alone.
    ours = [h for h in root.handlers if not type(h).__module__.startswith("_pytest")]
    if not ours:
        ours = [logging.StreamHandler()]
        root.addHandler(ours[0])
    for handler in ours:
        handler.setFormatter(JsonFormatter())
