"""Masking personal data in log lines, and the JSON line format."""

import json
import logging
import random
import re
import time
import uuid

import pytest

from chalicelib.platform.logs import JsonFormatter, configure, mask


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("call +6281234567890 now", "+6281234567890"),
        ("call 081234567890 now", "081234567890"),
        ("Key (phone)=(+62 812-3456-7890) already exists", "3456-7890"),
        ("from siti.nurhaliza@example.co.id", "siti.nurhaliza@"),
        ('{"email": "Budi@Example.COM"}', "Budi@"),
    ],
)
def test_phone_numbers_and_emails_are_masked(text: str, hidden: str) -> None:
    masked = mask(text)
    assert hidden not in masked
    assert "*" in masked


@pytest.mark.parametrize(
    "text",
    [str(uuid.UUID(int=123456789012345678901234567890)), "took 12.5 ms", "2026-11-25T21:00:00Z", "CUS-0000001"],
)
def test_ids_times_and_numbers_stay_readable(text: str) -> None:
    assert mask(text) == text


def test_records_are_masked_wherever_they_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    configure()
    logging.getLogger("third.party").warning("duplicate %s / %s", "+6281299990001", "ani@example.com")
    [record] = caplog.records
    line = json.loads(JsonFormatter().format(record))
    assert "+6281299990001" not in line["message"]
    assert "ani@" not in line["message"]
    assert (line["level"], line["logger"]) == ("WARNING", "third.party")


def test_tracebacks_are_masked_too(caplog: pytest.LogCaptureFixture) -> None:
    configure()
    try:
        raise ValueError("phone 081234567890 refused")
    except ValueError:
        logging.getLogger("x").exception("failed")
    line = JsonFormatter().format(caplog.records[0])
    assert "081234567890" not in line
    assert "ValueError" in line


def test_extra_fields_that_are_not_strings_are_masked_too() -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "sent", None, None)
    record.to = ["+6281234567890", {"email": "siti.nur@example.co.id"}]
    record.count = 3
    line = JsonFormatter().format(record)
    assert "6281234567890" not in line
    assert "siti.nur@" not in line
    assert json.loads(line)["count"] == 3


@pytest.mark.parametrize("created", [1_764_900_000.0, 1_764_900_000.999, 1_764_900_001.5, 1_764_899_999.25])
def test_each_line_has_its_own_time_to_the_millisecond_in_utc(created: float) -> None:
    # The second is formatted once per second and kept: lines of the next second (or an earlier one) get theirs.
    record = logging.LogRecord("registration.request", logging.INFO, __file__, 1, "request", None, None)
    record.created, record.msecs = created, (created - int(created)) * 1000
    line = json.loads(JsonFormatter().format(record))
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    assert line["time"] == f"{seconds}.{int(record.msecs):03d}Z"
    assert list(line)[:4] == ["time", "level", "logger", "message"]


def _reference_mask(text: str) -> str:
    """Both patterns, e-mail first, on the whole text: what mask() did before any shortcut."""
    email = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
    phone = re.compile(r"(?<![\w-])\+?\d(?:[\s.-]?\d){8,14}(?![\w-])")

    def masked_phone(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return ("+" if match.group(0).startswith("+") else "") + digits[:4] + "*" * (len(digits) - 6) + digits[-2:]

    return phone.sub(masked_phone, email.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text))


@pytest.mark.parametrize(
    "text",
    [
        "request",
        "GET /registrations/{registration_id}",
        str(uuid.UUID(int=987654321987654321)),
        "call +62 812-3456-7890 or 081234567890",
        "siti@example.co.id and +6281234567890",
        "a@b",
        "order 12345678 of 2026-11-25",
        # The id shortcut: canonical UUIDs only, alone or joined by NUL.
        "12345678-1234-1234-1234-123456789012",
        "12345678-1234-1234-1234-123456789012\x0087654321-4321-4321-4321-210987654321",
        "12345678-1234",
        "12345678-1234-1234-1234-1234567890123",
        "12345678-1234-1234-1234-123456789012 081234567890",
    ],
)
def test_masking_is_the_same_with_or_without_its_shortcuts(text: str) -> None:
    assert mask(text) == _reference_mask(text)


def test_ids_made_of_digits_are_never_taken_for_phone_numbers() -> None:
    # The UUIDs most like phone numbers: every hex digit a decimal one.
    rng = random.Random(24)  # noqa: S311 (test data, not a secret)
    ids = [str(uuid.UUID(int=int("".join(rng.choice("0123456789") for _ in range(32)), 16))) for _ in range(300)]
    for text in (*ids, "\x00".join(ids)):
        assert mask(text) == _reference_mask(text) == text


def test_fields_that_hold_names_addresses_or_free_text_are_masked_whole() -> None:
    configure()
    record = logging.getLogger("t").makeRecord(
        "t", logging.INFO, __file__, 1, "x", (), None, extra={"full_name": "Ani Wijaya", "address": "Jl. Mawar 3"}
    )
    line = JsonFormatter().format(record)
    assert "Ani" not in line
    assert "Mawar" not in line
    assert json.loads(line)["full_name"] == "[masked]"


def test_server_detail_lines_are_cut_from_any_message(caplog: pytest.LogCaptureFixture) -> None:
    configure()
    logging.getLogger("t").error("failed: %s", 'violates "c"\nDETAIL:  Failing row contains (Ani Wijaya, Jl. Mawar 3).')
    [record] = caplog.records
    assert "Ani" not in record.getMessage()
    assert "DETAIL: [omitted]" in record.getMessage()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # A page of ids: one scan of them joined, and they come out as they went in.
        ([str(uuid.UUID(int=i)) for i in range(20)], [str(uuid.UUID(int=i)) for i in range(20)]),
        (("a", "b"), ["a", "b"]),
        # One phone number among them: each is masked as it would be alone.
        (["ok", "call 081234567890", "x@example.com"], ["ok", "call 0812******90", "x***@example.com"]),
        # Digit runs in separate items never join into a phone number.
        (["0812", "34567890"], ["0812", "34567890"]),
        (uuid.UUID(int=81234567890), str(uuid.UUID(int=81234567890))),
    ],
)
def test_lists_of_strings_and_uuids_are_masked_as_each_item_alone(value: object, expected: object) -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "m", None, None)
    record.ids = value
    assert json.loads(JsonFormatter().format(record))["ids"] == expected
