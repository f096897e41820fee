"""Logs as one JSON object per line, with phone numbers and e-mail addresses masked, and no personal data.

Masking happens where a record is made (``logging.setLogRecordFactory``), so it
covers every logger and every handler, third-party messages and tracebacks
included.  A database error's text is never logged: psycopg's ``UniqueViolation``
names the duplicate value, a ``CheckViolation``'s "Failing row contains (…)" the
whole row, names and addresses too.  In its place a line says what a person fixing
it needs: the class, the SQLSTATE, the table, constraint, column and type
(``database_error``); any ``DETAIL:``, ``HINT:`` or ``CONTEXT:`` line is cut from
every message.  Names and addresses cannot be recognised in free text, so fields
that hold them (``PERSONAL_FIELDS``) are masked whole wherever they are logged.
There too every record gets the ``correlation_id`` of the work in hand (``correlated``):
the API request's id, carried to the worker and the sender of its messages.
"""

import contextlib
import contextvars
import json
import logging
import re
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# Anything that looks like a phone number: 9 or more digits, maybe with a leading
# +, spaces, dots or dashes between them.  UUIDs and timestamps don't match
# (their digit runs are broken by letters, colons, or are too short).
_PHONE = re.compile(r"(?<![\w-])\+?\d(?:[\s.-]?\d){8,14}(?![\w-])")
# Either of them, in one scan: most strings hold neither and need no more work.
_EMAIL_OR_PHONE = re.compile(f"{_EMAIL.pattern}|{_PHONE.pattern}")
# Canonical UUIDs, one or more joined by NUL: neither pattern can match in them (no @ and no +;
# a phone match must start and end where no word character or dash is beside it, so inside
# a UUID it would span all 32 hex digits, more than a phone number has).  Ids are most of
# what a log line holds, and this check is several times faster than the phone scan.
_HEX = "[0-9a-fA-F]"
_UUID = f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"
_UUIDS = re.compile(f"{_UUID}(?:\x00{_UUID})*")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
# PostgreSQL's detail lines quote rows and keys: "DETAIL:  Failing row contains (…)".
_SERVER_DETAIL = re.compile(r"\b(DETAIL|HINT|CONTEXT|WHERE):[^\n]*")
# An ``extra`` field of these names holds a name, an address or free text: masked whole.
PERSONAL_FIELDS = frozenset(
    {"full_name", "address", "notes", "survey_notes", "status_reason", "reason", "recipient", "payload"}
)
MASKED = "[masked]"


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
    if not _holds_either(text):
        return text
    if "@" in text:
        text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _PHONE.sub(_mask_phone, text)


def database_error(error: BaseException) -> str | None:
    """A database error as it may be logged: its class, SQLSTATE, and the table, constraint, column
    and type it names; never its text (None for an error that is not psycopg's)."""
    diag = getattr(error, "diag", None)
    if diag is None or not hasattr(diag, "constraint_name") or not hasattr(error, "sqlstate"):
        return None
    named = [
        f"{key} {value}"
        for key, value in (
            ("table", diag.table_name),
            ("constraint", diag.constraint_name),
            ("column", diag.column_name),
            ("type", diag.datatype_name),
        )
        if value
    ]
    kind = f"{type(error).__module__}.{type(error).__qualname__}"
    return f"{kind}: SQLSTATE {getattr(error, 'sqlstate', None) or 'none'}" + (
        f" ({', '.join(named)})" if named else ""
    )


def format_exception(exc_info: Any) -> str:
    """A traceback as it may be logged: each database error in the chain by ``database_error``."""
    value = exc_info[1]
    chain: list[BaseException] = []
    while value is not None and value not in chain:
        chain.append(value)
        value = value.__cause__ or (None if value.__suppress_context__ else value.__context__)
    if not any(database_error(e) for e in chain):
        return mask(_SERVER_DETAIL.sub(r"\1: [omitted]", logging.Formatter().formatException(exc_info)))
    parts: list[str] = []
    for error in reversed(chain):
        if parts:
            parts.append("\nDuring handling of the above exception, another exception occurred:\n\n")
        parts.append("Traceback (most recent call last):\n" + "".join(traceback.format_tb(error.__traceback__)))
        said = database_error(error) or "".join(traceback.format_exception_only(type(error), error)).strip()
        parts.append(said)
    return mask(_SERVER_DETAIL.sub(r"\1: [omitted]", "".join(parts)))


def _safe_arg(value: Any) -> Any:
    return (database_error(value) or value) if isinstance(value, BaseException) else value


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
        if value and all(type(v) is str for v in value) and not _holds_either("\x00".join(value)):
            return list(value)  # one scan for a page of ids rather than one per id
        return [_masked(v) for v in value]
    if isinstance(value, UUID):
        return str(value)  # hex digits and dashes: neither an address nor a phone number
    return mask(str(value))


def _holds_either(text: str) -> bool:
    """Whether ``mask`` would change anything in ``text`` (strings joined by NUL, which no pattern spans).

    Ids (``_UUIDS``) hold neither; no e-mail address without an @, and the phone pattern alone
    scans much faster than both together (routes and messages hold neither)."""
    if _UUIDS.fullmatch(text):
        return False
    return (_EMAIL_OR_PHONE if "@" in text else _PHONE).search(text) is not None


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
                entry[key] = MASKED if key in PERSONAL_FIELDS and value is not None else _masked(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = format_exception(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return _ENCODER.encode(entry)


class _MaskingRecordFactory:
    """Wraps the record factory it found: every record's message and traceback come out masked."""

    def __init__(self, make_record: Callable[..., logging.LogRecord]) -> None:
        self._make_record = make_record

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self._make_record(*args, **kwargs)
        if isinstance(record.args, tuple):
            record.args = tuple(_safe_arg(a) for a in record.args)
        message = record.getMessage()
        if ":" in message:
            message = _SERVER_DETAIL.sub(r"\1: [omitted]", message)
        record.msg, record.args = mask(message), None
        if (current := _correlation_id.get()) is not None:
            record.correlation_id = current
        if record.exc_info:
            record.exc_text = format_exception(record.exc_info)
        return record


def configure(level: int = logging.INFO) -> None:
    """Mask every record and format the process's log lines as JSON; idempotent.

    Whether it was done is the logging module's own state (its record factory), so
    no flag of ours has to be kept or reset.
    """
    if isinstance(logging.getLogRecordFactory(), _MaskingRecordFactory):
        return
    # Our lines never say where a call was made, nor its thread or process: logging's own
    # switches (the Logging HOWTO, "Optimization") spare every record finding them out.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
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
