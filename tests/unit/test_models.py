"""Request bodies: the phone number's shortcut reads what phonenumbers reads."""

import json
import random

import phonenumbers
import pytest
from pydantic import ValidationError

from chalicelib.registrations.models import RegistrationIn, _parse_phone


def plain_mobiles() -> list[str]:
    """Every 08x prefix at every length the shortcut takes, in both spellings, random digits after."""
    rng = random.Random(13)  # noqa: S311 (test data)
    numbers = []
    for second in "0123456789":
        for length in range(9, 13):
            national = "8" + second + "".join(rng.choice("0123456789") for _ in range(length - 2))
            numbers += [f"0{national}", f"+62{national}"]
    return numbers


@pytest.mark.parametrize("typed", plain_mobiles())
def test_the_shortcut_reads_what_phonenumbers_parse_reads(typed: str) -> None:
    expected = phonenumbers.parse(typed, "ID")
    read = _parse_phone(typed)
    assert (read.country_code, read.national_number) == (expected.country_code, expected.national_number)
    assert phonenumbers.number_type(read) == phonenumbers.number_type(expected)
    assert not expected.italian_leading_zero


BODY = {
    "full_name": "Siti",
    "email": "siti@example.co.id",
    "address": "Jl. Merdeka 1",
    "city": "Bandung",
    "package_id": "6f1c1b5e-6b1a-4c39-9a57-6d0c3d1c7a11",
}


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("081234567890", "+6281234567890"),
        ("+6281234567890", "+6281234567890"),
        ("0812-3456-7890", "+6281234567890"),
        ("+62 812 3456 7890", "+6281234567890"),
    ],
)
def test_phone_numbers_are_stored_in_e164(typed: str, stored: str) -> None:
    assert RegistrationIn.model_validate_json(json.dumps({**BODY, "phone": typed})).phone == stored


@pytest.mark.parametrize("typed", ["0812", "0212345678", "+6591234567", "0800123456789012", "not a number"])
def test_what_is_not_an_indonesian_mobile_is_refused(typed: str) -> None:
    with pytest.raises(ValidationError):
        RegistrationIn.model_validate_json(json.dumps({**BODY, "phone": typed}))
