"""The log scan finds what it must, and not what masking leaves."""

import logging

from chalicelib.platform.logs import mask
from tests.pii_scan import EMAIL, PHONE, PiiScanHandler


def test_the_patterns_find_raw_personal_data_and_not_masked() -> None:
    raw = "sent to +6281234567890 and 081234567890, copy to siti.nur@example.co.id"
    assert PHONE.findall(raw)
    assert EMAIL.findall(raw)
    assert not PHONE.findall(mask(raw))
    assert not EMAIL.findall(mask(raw))
    assert not PHONE.findall("registration 5f0c3a52-8d47-4f2e-9a51-081234567890 at 2026-11-25T21:50:54")


def test_the_handler_counts_lines_and_hits() -> None:
    handler = PiiScanHandler()
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "to %s", ("+6281299990001",), None)
    handler.handle(record)
    handler.handle(logging.LogRecord("t", logging.INFO, __file__, 1, "nothing here", None, None))
    assert (handler.lines, handler.hits) == (2, 1)
